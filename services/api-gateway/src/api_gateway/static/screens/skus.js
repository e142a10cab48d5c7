// SKUs and parts: upload part files, list them, create and edit SKUs (also used from the order page).
import { path } from '../api.js';
import { cell, confirmDialog, field, fmtNumber, h, replace, showError, swatch, table } from '../dom.js';
import { allParts, openSkuDialog, partUploader } from '../sku_dialog.js';

export async function render(root, { scope }) {
  const { api } = scope;
  const partsList = h('div', {});
  const skuList = h('div', {});
  const search = h('input', { name: 'q', type: 'search', autocomplete: 'off', placeholder: 'code or name' });

  async function loadParts() {
    const parts = await allParts(api);
    if (!scope.alive) return;
    replace(partsList, table(['Name', 'File', 'Material', 'Grams', 'Minutes', 'Parameters', ''], parts.map((p) => h('tr', {},
      cell('Name', p.name),
      cell('File', h('a', { href: `/api/v1${path`/parts/${p.id}/file`}`, download: p.filename }, p.filename), ` (${p.kind})`),
      cell('Material', swatch(p.material?.color), ` ${p.material?.type || '—'}`),
      cell('Grams', fmtNumber(p.grams, 1)), cell('Minutes', fmtNumber(p.print_minutes)),
      cell('Parameters', (p.parameters || []).map((x) => x.name).join(', ') || '—'),
      cell('', h('button', { type: 'button', class: 'link danger', 'data-needs': 'operator', onclick: () => removePart(p) }, 'Delete')))),
    { caption: 'Parts', empty: 'No parts uploaded yet.' }));
  }

  async function loadSkus() {
    const skus = (await api.get('/skus', { q: search.value.trim(), limit: 500 })).items;
    if (!scope.alive) return;
    replace(skuList, table(['SKU', 'Name', 'Parts', 'Jobs / unit', 'SKU PARAMs', 'Materials', ''], skus.map((s) => h('tr', {},
      cell('SKU', h('strong', {}, s.sku)), cell('Name', s.name),
      cell('Parts', s.parts.map((p) => `${p.quantity}× ${p.part_name}`).join(', ') || '—'),
      cell('Jobs / unit', s.jobs_per_unit),
      cell('SKU PARAMs', (s.parameters || []).map((p) => p.name).join(', ') || '—'),
      cell('Materials', s.materials.map((m) => h('span', { class: 'nowrap' }, swatch(m.color), ` ${m.type} ${fmtNumber(m.grams)} g `))),
      cell('', h('button', { type: 'button', class: 'link', 'data-needs': 'operator', onclick: () => edit(s) }, 'Edit'),
        h('button', { type: 'button', class: 'link danger', 'data-needs': 'operator', onclick: () => removeSku(s) }, 'Delete')))),
    { caption: 'SKUs', empty: 'No SKUs match.' }));
  }

  async function edit(s) {
    if (await openSkuDialog({ sku: s })) await scope.run(loadSkus(), showError);
  }

  async function removeSku(s) {
    if (!(await confirmDialog('Delete SKU', `Delete SKU ${s.sku}?`, 'Delete SKU'))) return;
    try {
      await api.del(path`/skus/${s.id}`);
      await loadSkus();
    } catch (error) {
      showError(error);
    }
  }

  async function removePart(p) {
    if (!(await confirmDialog('Delete part', `Delete part “${p.name}”?`, 'Delete part'))) return;
    try {
      await api.del(path`/parts/${p.id}`);
      await loadParts();
    } catch (error) {
      showError(error);
    }
  }

  const uploadForm = h('form', { class: 'panel', novalidate: true, onsubmit: (e) => e.preventDefault() },
    partUploader({ legend: 'Upload a part', onUploaded: () => scope.run(loadParts(), showError) }));
  search.addEventListener('input', scope.debounce(() => scope.run(loadSkus(), showError), 250));

  root.append(
    h('h1', {}, 'SKUs and parts'),
    h('section', { 'aria-labelledby': 'skus-h' },
      h('div', { class: 'title-row' }, h('h2', { id: 'skus-h' }, 'SKUs'),
        h('button', { type: 'button', class: 'primary', 'data-needs': 'operator', onclick: async () => { if (await openSkuDialog()) await scope.run(loadSkus(), showError); } }, 'New SKU')),
      h('div', { class: 'filters' }, field('Search SKUs', search)), skuList),
    h('section', { 'aria-labelledby': 'parts-h' }, h('h2', { id: 'parts-h' }, 'Parts'), uploadForm, partsList));
  await Promise.all([loadParts(), loadSkus()]);
}
