// The SKU dialog and part uploader: used by the SKUs screen and the order page's "Create SKU".
import { api, path } from './api.js';
import {
  checkbox, field, h, openDialog, replace, showProblem, submitting, toast, uid,
} from './dom.js';

const ACCEPT = '.3mf,.gcode,.stl,.scad';

/** The upload fields of POST /api/v1/parts; `upload()` sends them and resolves to the new part. */
export function partUploader({ legend = 'Upload a part file', onUploaded } = {}) {
  const file = h('input', { name: 'file', type: 'file', accept: ACCEPT });
  const name = h('input', { name: 'name', autocomplete: 'off' });
  const materialType = h('input', { name: 'material_type', placeholder: 'PLA', list: 'material-types', autocomplete: 'off' });
  const color = h('input', { id: uid('color'), name: 'material_color', placeholder: '#RRGGBB', pattern: '#[0-9A-Fa-f]{6}', autocomplete: 'off' });
  const picker = h('input', { type: 'color', 'aria-label': 'Pick the material colour', value: '#888888' });
  picker.addEventListener('input', () => { color.value = picker.value.toUpperCase(); });
  const grams = h('input', { name: 'grams', type: 'number', min: 0, step: 'any' });
  const minutes = h('input', { name: 'print_minutes', type: 'number', min: 0, step: 'any' });
  const button = h('button', { type: 'button', 'data-needs': 'operator', }, 'Upload part');
  file.addEventListener('change', () => {
    const chosen = file.files[0];
    if (chosen && !name.value) name.value = chosen.name.replace(/(\.gcode)?\.(3mf|gcode|stl|scad)$/i, '');
  });
  const box = h('fieldset', { class: 'grid upload' }, h('legend', {}, legend),
    field('Part file', file, { hint: '.3mf, .gcode.3mf, .gcode, .stl or .scad' }),
    field('Part name', name),
    field('Material type', materialType),
    h('div', { class: 'field' }, h('label', { for: color.id }, 'Material colour'),
      h('div', { class: 'inline' }, color, picker)),
    field('Grams', grams), field('Print minutes', minutes),
    h('datalist', { id: 'material-types' }, ['PLA', 'PETG', 'ABS', 'ASA', 'TPU', 'PA', 'PC'].map((t) => h('option', { value: t }))),
    h('div', { class: 'actions' }, button));

  async function upload() {
    return submitting(box, async () => {
      const form = new FormData();
      if (file.files[0]) form.append('file', file.files[0]);
      form.append('name', name.value.trim());
      form.append('material_type', materialType.value.trim());
      for (const [key, input] of [['material_color', color], ['grams', grams], ['print_minutes', minutes]]) {
        if (input.value.trim()) form.append(key, input.value.trim());
      }
      const part = await api.upload('/parts', form);
      for (const input of [file, name, materialType, color, grams, minutes]) input.value = '';
      toast(`Part “${part.name}” uploaded.`);
      if (onUploaded) onUploaded(part);
      return part;
    });
  }
  button.addEventListener('click', upload);
  return box;
}

export async function allParts(caller = api) {
  return (await caller.get('/parts', { limit: 500 })).items;
}

/**
 * Create (or, with `sku`, edit) a SKU: code, name, parts with quantities, and which of each part's
 * parameters are SKU PARAMs. Resolves with the saved SKU, or null when dismissed.
 */
export async function openSkuDialog({ sku = null, code = '' } = {}) {
  let parts = await allParts();
  const rows = h('div', { class: 'part-rows' });
  const form = h('form', { class: 'grid', novalidate: true });
  let rowCount = 0;

  function partRow(line = { part_id: '', quantity: 1, sku_params: null, parameter_values: {} }) {
    const index = rowCount++;
    const pick = h('select', { name: `parts[${index}].part_id`, dataset: { field: 'part_id' } },
      h('option', { value: '' }, '— choose a part —'),
      parts.map((p) => h('option', { value: p.id, selected: p.id === line.part_id }, `${p.name} (${p.filename})`)));
    const quantity = h('input', { name: `parts[${index}].quantity`, type: 'number', min: 1, step: 1, value: line.quantity });
    const params = h('div', { class: 'sku-params' });
    const drawParams = () => {
      const part = parts.find((p) => p.id === pick.value);
      const declared = part ? part.parameters || [] : [];
      replace(params, declared.length ? h('span', { class: 'muted' }, 'Order lines may set:') : null,
        declared.map((p) => checkbox(p.name, h('input', { type: 'checkbox', value: p.name, class: 'sku-param',
          checked: line.sku_params ? line.sku_params.includes(p.name) : true }))));
    };
    pick.addEventListener('change', drawParams);
    drawParams();
    const kept = { part_id: line.part_id, parameter_values: line.parameter_values || {},
      material: line.material ? { type: line.material.type, color: line.material.color ?? null } : null };
    const row = h('div', { class: 'part-row', dataset: { kept: JSON.stringify(kept) } },
      field('Part', pick), field('Quantity', quantity), params,
      h('button', { type: 'button', class: 'link', onclick: () => row.remove() }, 'Remove part'));
    rows.append(row);
    return row;
  }

  const uploader = partUploader({
    legend: 'Or upload a new part file',
    onUploaded: (part) => {
      parts = [part, ...parts];
      rows.querySelectorAll('select').forEach((s) => s.append(h('option', { value: part.id }, `${part.name} (${part.filename})`)));
      const empty = [...rows.querySelectorAll('select')].find((s) => !s.value);
      if (empty) {
        empty.value = part.id;
        empty.dispatchEvent(new Event('change'));
      } else {
        partRow({ part_id: part.id, quantity: 1, sku_params: null });
      }
    },
  });

  const codeInput = h('input', { name: 'sku', required: true, autocomplete: 'off', value: sku ? sku.sku : code });
  const nameInput = h('input', { name: 'name', required: true, autocomplete: 'off', value: sku ? sku.name : '' });
  form.append(
    field('SKU code', codeInput), field('Name', nameInput),
    field('Description', h('textarea', { name: 'description', rows: 2 }, sku?.description || ''), { wide: true }),
    h('fieldset', { class: 'wide' }, h('legend', {}, 'Parts'), rows,
      h('button', { type: 'button', onclick: () => partRow() }, 'Add another part')),
    uploader,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, sku ? 'Save SKU' : 'Create SKU')));
  (sku ? sku.parts : [{ part_id: '', quantity: 1, sku_params: null }]).forEach((line) => partRow(line));

  const { dialog, close } = openDialog(sku ? `Edit SKU ${sku.sku}` : 'New SKU', form, { wide: true });
  return new Promise((resolve) => {
    let saved = null;
    dialog.addEventListener('close', () => resolve(saved));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(form, async () => {
        const lines = [...rows.querySelectorAll('.part-row')].map((row) => {
          const kept = JSON.parse(row.dataset.kept);
          const partId = row.querySelector('select').value;
          const line = {
            part_id: partId,
            quantity: Number(row.querySelector('input[type=number]').value),
            sku_params: [...row.querySelectorAll('.sku-param:checked')].map((c) => c.value),
          };
          // What the form does not edit (material override, fixed values) stays with the same part.
          if (partId === kept.part_id) {
            line.parameter_values = kept.parameter_values;
            if (kept.material) line.material = kept.material;
          }
          return line;
        });
        const missing = lines.findIndex((l) => !l.part_id);
        if (missing >= 0) {
          showProblem(form, { problem: { errors: [{ field: `parts[${missing}].part_id`, message: 'choose a part or upload one' }] } });
          return;
        }
        const body = { sku: codeInput.value.trim(), name: nameInput.value.trim(),
          description: form.elements.description.value.trim() || null, parts: lines };
        saved = sku ? await api.patch(path`/skus/${sku.id}`, body) : await api.create('/skus', body);
        close();
      });
    });
  });
}
