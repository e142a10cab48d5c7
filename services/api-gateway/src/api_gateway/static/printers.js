// Printers: live state, progress, loaded materials, tags, FabMatic, "bed cleared", adding a printer.
import { api } from './app.js';
import { badge, checkbox, field, fmtNumber, h, openDialog, progress, replace, submitting, swatch, toast } from './dom.js';

export async function render(root, { scope }) {
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
    return h('article', { class: `printer panel state-${state}`, 'aria-labelledby': headingId, dataset: { id: p.id } },
      h('header', {}, h('h2', { id: headingId }, p.name), badge(state)),
      h('p', { class: 'muted' }, `${p.model}${p.host ? ` · ${p.host}` : ''}`),
      p.error ? h('p', { class: 'error-text', role: 'note' }, p.error) : null,
      ['printing', 'paused'].includes(state) || p.current_job_id
        ? h('div', { class: 'job' }, progress(pct, 100, `progress on ${p.name}`), ` ${fmtNumber(pct)}%`,
          p.current_job_id ? h('div', {}, h('a', { href: `#/queue?tab=progress` }, 'Current job')) : null)
        : null,
      h('ul', { class: 'materials', 'aria-label': 'Loaded materials' },
        (p.materials || []).length ? p.materials.map((m) => h('li', {}, swatch(m.color),
          ` ${m.slot === 254 ? "External spool" : `AMS ${Math.floor(m.slot / 4) + 1}-${(m.slot % 4) + 1}`}: ${m.type || "empty"}`,
          m.remain_percent !== null && m.remain_percent !== undefined && m.remain_percent >= 0 ? h('span', { class: 'muted' }, ` ${m.remain_percent}%`) : null))
          : h('li', { class: 'muted' }, 'No material reported')),
      h('p', { class: 'tags' }, (p.tags || []).map((t) => h('span', { class: 'tag' }, t)),
        p.fabmatic ? h('span', { class: 'tag fabmatic', title: 'Clears its own bed after a print' }, 'FabMatic') : null),
      h('div', { class: 'bed' },
        p.bed_clear ? h('span', { class: 'ok' }, 'Bed clear') : h('span', { class: 'warn-text' }, 'Part on the bed'),
        h('button', { type: 'button', 'data-needs': 'operator', disabled: p.bed_clear || ['printing', 'paused'].includes(state),
          'aria-label': `Bed cleared on ${p.name}`, onclick: () => bedCleared(p) }, 'Bed cleared')));
  }

  async function bedCleared(p) {
    try {
      merge(await api.post(`/printers/${p.id}/bed-cleared`));
    } catch (error) {
      toast(error.message, 'error');
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

  function addPrinter() {
    const form = h('form', { class: 'grid', novalidate: true },
      field('Name', h('input', { name: 'name', required: true, autocomplete: 'off' })),
      field('Model', h('input', { name: 'model', required: true, list: 'printer-models', autocomplete: 'off' })),
      h('datalist', { id: 'printer-models' }, ['X1C', 'X1E', 'P1S', 'P1P', 'A1', 'A1 mini'].map((m) => h('option', { value: m }))),
      field('Protocol', h('select', { name: 'protocol' }, h('option', { value: 'bambu_lan' }, 'Bambu LAN'))),
      field('Host', h('input', { name: 'host', required: true, autocomplete: 'off', placeholder: '192.168.1.50' })),
      field('MQTT port', h('input', { name: 'port', type: 'number', min: 1, max: 65535, value: 8883 })),
      field('FTPS port', h('input', { name: 'ftp_port', type: 'number', min: 1, max: 65535, value: 990 })),
      field('Serial number', h('input', { name: 'serial', required: true, autocomplete: 'off' })),
      field('Access code', h('input', { name: 'access_code', type: 'password', required: true, autocomplete: 'new-password' }),
        { hint: 'From the printer’s network settings; stored encrypted and never shown again.' }),
      field('Tags', h('input', { name: 'tags', autocomplete: 'off', placeholder: 'big, petg' }), { hint: 'Comma-separated' }),
      checkbox('FabMatic (clears its own bed)', h('input', { name: 'fabmatic', type: 'checkbox' })),
      field('CA certificate (PEM, optional)', h('textarea', { name: 'ca_cert', rows: 3, placeholder: '-----BEGIN CERTIFICATE-----' }),
        { wide: true, hint: 'Leave empty for the Bambu printer CA.' }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add printer')));
    const { close } = openDialog('Add a printer', form, { wide: true });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const v = form.elements;
        const body = {
          name: v.name.value.trim(), model: v.model.value.trim(), protocol: v.protocol.value, host: v.host.value.trim(),
          port: Number(v.port.value || 8883), ftp_port: Number(v.ftp_port.value || 990), serial: v.serial.value.trim(),
          access_code: v.access_code.value, tags: v.tags.value.split(',').map((t) => t.trim()).filter(Boolean),
          fabmatic: v.fabmatic.checked,
        };
        if (v.ca_cert.value.trim()) body.ca_cert = v.ca_cert.value.trim();
        merge(await api.create('/printers', body));
        close();
        toast(`Printer ${body.name} added.`);
      });
    });
  }

  tagFilter.addEventListener('change', draw);
  scope.on('printer.updated', merge);
  scope.on('resync', () => load().catch(() => {}));
  await load();
}
