// Printers: live state, progress, loaded materials, tags, FabMatic, "bed cleared", adding a printer.
// Every brand in one list: Bambu Lab (AMS trays), Klipper (Spoolman spool), Prusa and OctoPrint
// (materials the operator sets).
import { path } from '../api.js';
import { badge, checkbox, field, fmtNumber, h, openDialog, progress, replace, showError, submitting, swatch, toast } from '../dom.js';
import { slotLabel } from '../printer_slots.js';

const BRANDS = {
  bambu_lan: { name: 'Bambu Lab', via: 'LAN' },
  moonraker: { name: 'Klipper', via: 'Moonraker' },
  prusalink: { name: 'Prusa', via: 'PrusaLink' },
  octoprint: { name: 'OctoPrint', via: 'OctoPrint' },
};
const DEFAULT_PORTS = { bambu_lan: 8883, moonraker: 7125, prusalink: 80, octoprint: 80 };
const MODELS = {
  bambu_lan: ['X1C', 'X1E', 'P1S', 'P1P', 'A1', 'A1 mini', 'H2D'],
  moonraker: ['Voron 2.4', 'Voron Trident', 'Creality K1', 'Ender 3'],
  prusalink: ['Prusa MK4', 'Prusa MK3.9', 'Prusa XL', 'Prusa Mini'],
  octoprint: ['Ender 3', 'Prusa MK3S', 'Anycubic Kobra'],
};

function brandOf(p) {
  return BRANDS[p.protocol] || { name: p.protocol || 'Printer', via: p.protocol || '' };
}


export async function render(root, { scope }) {
  const { api } = scope;
  let printers = [];
  const grid = h('div', { class: 'printer-grid' });
  const tagFilter = h('select', { name: 'tag' });

  root.append(
    h('div', { class: 'title-row' }, h('h1', {}, 'Printers'),
      h('button', { type: 'button', class: 'primary', 'data-needs': 'admin', onclick: addPrinter }, 'Add printer')),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, field('Tag', tagFilter)),
    grid);

  async function load() {
    printers = (await api.get('/printers', { limit: 500 })).items;
    if (scope.alive) draw();
  }

  function drawTags() {
    const chosen = tagFilter.value;
    const tags = [...new Set(printers.flatMap((p) => p.tags || []))].sort();
    replace(tagFilter, h('option', { value: '' }, 'All printers'),
      tags.map((t) => h('option', { value: t, selected: t === chosen }, t)));
  }

  function draw() {
    drawTags();
    const shown = printers.filter((p) => !tagFilter.value || (p.tags || []).includes(tagFilter.value))
      .sort((a, b) => a.name.localeCompare(b.name));
    replace(grid, shown.length ? shown.map(card) : h('p', { class: 'muted' }, 'No printers yet.'));
  }

  function card(p) {
    const state = p.online ? p.state : 'offline';
    const pct = p.progress_percent ?? 0;
    const headingId = `printer-${p.id}`;
    const brand = brandOf(p);
    const operatorSets = p.protocol && p.protocol !== 'bambu_lan' && p.materials_source !== 'printer';
    return h('article', { class: `printer panel state-${state} brand-${p.protocol || 'bambu_lan'}`, 'aria-labelledby': headingId, dataset: { id: p.id } },
      h('header', {}, h('h2', { id: headingId }, h('a', { href: `#${path`/printers/${p.id}`}` }, p.name)), badge(state)),
      h('p', { class: 'muted' }, h('span', { class: 'brand' }, brand.name), ` · ${p.model}`,
        h('span', { class: 'via', title: `Connected through ${brand.via}` }, ` · ${brand.via}`), p.host ? ` · ${p.host}` : ''),
      p.error ? h('p', { class: 'error-text', role: 'note' }, p.error) : null,
      ['printing', 'paused'].includes(state) || p.current_job_id
        ? h('div', { class: 'job' }, progress(pct, 100, `progress on ${p.name}`), ` ${fmtNumber(pct)}%`,
          p.current_job_id ? h('div', {}, h('a', { href: `#${path`/printers/${p.id}`}` }, 'Current job and history')) : null)
        : null,
      h('ul', { class: 'materials', 'aria-label': 'Loaded materials' },
        (p.materials || []).length ? p.materials.map((m) => h('li', {}, swatch(m.color),
          ` ${slotLabel(p, m)}: ${m.type || "empty"}`,
          m.remain_percent !== null && m.remain_percent !== undefined && m.remain_percent >= 0 ? h('span', { class: 'muted' }, ` ${m.remain_percent}%`) : null))
          : h('li', { class: 'muted' }, operatorSets ? 'No material set: this printer does not report its filament' : 'No material reported')),
      operatorSets ? h('button', { type: 'button', class: 'link', 'data-needs': 'admin', 'aria-label': `Set materials on ${p.name}`,
        onclick: () => setMaterials(p) }, 'Set materials') : null,
      (p.protocol || 'bambu_lan') === 'bambu_lan' ? h('button', { type: 'button', class: 'link', 'aria-label': `Camera of ${p.name}`,
        onclick: () => showCamera(p) }, 'Camera') : null,
      h('p', { class: 'tags' }, (p.tags || []).map((t) => h('span', { class: 'tag' }, t)),
        p.fabmatic ? h('span', { class: 'tag fabmatic', title: 'Clears its own bed after a print' }, 'FabMatic') : null),
      h('div', { class: 'bed' },
        p.bed_clear ? h('span', { class: 'ok' }, 'Bed clear') : h('span', { class: 'warn-text' }, 'Part on the bed'),
        h('button', { type: 'button', 'data-needs': 'operator', disabled: p.bed_clear || ['printing', 'paused'].includes(state),
          'aria-label': `Bed cleared on ${p.name}`, onclick: () => bedCleared(p) }, 'Bed cleared')));
  }

  async function bedCleared(p) {
    try {
      merge(await api.post(path`/printers/${p.id}/bed-cleared`));
    } catch (error) {
      showError(error);
    }
  }

  function merge(update) {
    const i = printers.findIndex((x) => x.id === update.id);
    if (update.deleted) {
      if (i >= 0) printers.splice(i, 1);
    } else if (i >= 0) {
      printers[i] = { ...printers[i], ...update };
    } else {
      printers.push(update);
    }
    draw();
  }

  // The live view: the newest picture, asked for again a second after each one arrives. The gateway
  // that holds the printer fetches it; the browser never talks to the printer.
  function showCamera(p) {
    const camera = path`/printers/${p.id}/camera`;
    const note = h('p', { class: 'muted', role: 'status' }, 'Connecting to the camera…');
    const img = h('img', { class: 'camera', alt: `Live view of ${p.name}`, width: 640, height: 360 });
    const { dialog } = openDialog(`Camera: ${p.name}`, h('div', { class: 'camera-view' }, img, note), { wide: true });
    let timer = null;
    let open = true;
    const next = (delay) => { if (open) timer = setTimeout(() => { img.src = `/api/v1${camera}?t=${Date.now()}`; }, delay); };
    img.addEventListener('load', () => { note.textContent = `Live · ${new Date().toLocaleTimeString()}`; next(1000); });
    img.addEventListener('error', async () => {
      try {
        await api.request('GET', camera);
      } catch (error) {
        note.textContent = error.message;
      }
      next(3000);
    });
    dialog.addEventListener('close', () => { open = false; clearTimeout(timer); });
    next(0);
  }

  function materialRow(m = {}) {
    const type = h('input', { name: 'type', autocomplete: 'off', value: m.type || '', placeholder: 'PLA', list: 'material-types' });
    const color = h('input', { name: 'color', type: 'color', value: m.color || '#808080' });
    const row = h('div', { class: 'material-row' }, field('Material type', type), field('Colour', color),
      h('button', { type: 'button', class: 'link', 'aria-label': 'Remove this material', onclick: () => row.remove() }, 'Remove'));
    return row;
  }

  function setMaterials(p) {
    const rows = h('div', { class: 'material-rows wide' }, (p.materials.length ? p.materials : [{}]).map(materialRow));
    const form = h('form', { class: 'grid', novalidate: true },
      h('p', { class: 'muted wide' }, `${p.name} does not report its filament: say what is loaded, so jobs are matched to it.`),
      h('datalist', { id: 'material-types' }, ['PLA', 'PETG', 'ABS', 'ASA', 'TPU', 'PA', 'PC'].map((t) => h('option', { value: t }))),
      rows,
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => rows.append(materialRow()) }, 'Add a material'),
        h('button', { type: 'submit', class: 'primary' }, 'Save materials')));
    const { close } = openDialog(`Materials on ${p.name}`, form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const materials = [...rows.querySelectorAll('.material-row')]
          .map((row) => ({ type: row.querySelector('[name=type]').value.trim(), color: row.querySelector('[name=color]').value }))
          .filter((m) => m.type);
        merge(await api.patch(path`/printers/${p.id}`, { materials }));
        close();
        toast(`Materials on ${p.name} saved.`);
      });
    });
  }

  function addPrinter() {
    const protocol = h('select', { name: 'protocol' },
      Object.entries(BRANDS).map(([value, b]) => h('option', { value }, value === 'bambu_lan' ? 'Bambu LAN' : `${b.name} (${b.via})`)));
    const models = h('datalist', { id: 'printer-models' });
    const bambu = h('div', { class: 'grid wide protocol-fields' },
      field('MQTT port', h('input', { name: 'port', type: 'number', min: 1, max: 65535, value: 8883 })),
      field('FTPS port', h('input', { name: 'ftp_port', type: 'number', min: 1, max: 65535, value: 990 })),
      field('Serial number', h('input', { name: 'serial', required: true, autocomplete: 'off' })),
      field('Access code', h('input', { name: 'access_code', type: 'password', required: true, autocomplete: 'new-password' }),
        { hint: 'From the printer’s network settings; stored encrypted and never shown again.' }),
      field('CA certificate (PEM, optional)', h('textarea', { name: 'ca_cert', rows: 3, placeholder: '-----BEGIN CERTIFICATE-----' }),
        { wide: true, hint: 'Leave empty for the Bambu printer CA.' }));
    const other = h('div', { class: 'grid wide protocol-fields', hidden: true },
      field('Port', h('input', { name: 'http_port', type: 'number', min: 1, max: 65535, value: 7125 })),
      field('API key', h('input', { name: 'api_key', type: 'password', autocomplete: 'new-password' }),
        { hint: 'Moonraker: only if it requires one. PrusaLink: Settings → API key. OctoPrint: Settings → Application keys. Stored encrypted, never shown again.' }),
      field('Serial (optional)', h('input', { name: 'other_serial', autocomplete: 'off' })),
      field('Loaded material (optional)', h('input', { name: 'material_type', autocomplete: 'off', placeholder: 'PLA' }),
        { hint: 'For a printer that does not report its filament (no Spoolman).' }),
      field('Material colour', h('input', { name: 'material_color', type: 'color', value: '#808080' })));
    const form = h('form', { class: 'grid', novalidate: true },
      field('Name', h('input', { name: 'name', required: true, autocomplete: 'off' })),
      field('Protocol', protocol),
      field('Model', h('input', { name: 'model', required: true, list: 'printer-models', autocomplete: 'off' })),
      models,
      field('Host', h('input', { name: 'host', required: true, autocomplete: 'off', placeholder: '192.168.1.50' })),
      bambu, other,
      field('Tags', h('input', { name: 'tags', autocomplete: 'off', placeholder: 'big, petg' }), { hint: 'Comma-separated' }),
      checkbox('FabMatic (clears its own bed)', h('input', { name: 'fabmatic', type: 'checkbox' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add printer')));
    function protocolChanged() {
      const isBambu = protocol.value === 'bambu_lan';
      bambu.hidden = !isBambu;
      other.hidden = isBambu;
      form.elements.http_port.value = DEFAULT_PORTS[protocol.value];
      replace(models, MODELS[protocol.value].map((m) => h('option', { value: m })));
    }
    protocol.addEventListener('change', protocolChanged);
    protocolChanged();
    const { close } = openDialog('Add a printer', form, { wide: true });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const v = form.elements;
        const body = {
          name: v.name.value.trim(), model: v.model.value.trim(), protocol: v.protocol.value, host: v.host.value.trim(),
          tags: v.tags.value.split(',').map((t) => t.trim()).filter(Boolean), fabmatic: v.fabmatic.checked,
        };
        if (body.protocol === 'bambu_lan') {
          Object.assign(body, { port: Number(v.port.value || 8883), ftp_port: Number(v.ftp_port.value || 990),
            serial: v.serial.value.trim(), access_code: v.access_code.value });
          if (v.ca_cert.value.trim()) body.ca_cert = v.ca_cert.value.trim();
        } else {
          body.port = Number(v.http_port.value || DEFAULT_PORTS[body.protocol]);
          if (v.api_key.value) body.api_key = v.api_key.value;
          if (v.other_serial.value.trim()) body.serial = v.other_serial.value.trim();
          if (v.material_type.value.trim()) body.materials = [{ type: v.material_type.value.trim(), color: v.material_color.value }];
        }
        merge(await api.create('/printers', body));
        close();
        toast(`Printer ${body.name} added.`);
      });
    });
  }

  tagFilter.addEventListener('change', draw);
  scope.on('printer.updated', merge);
  scope.on('resync', () => scope.run(load(), showError));
  await load();
}
