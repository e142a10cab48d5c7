// Material planning: what the waiting jobs need against what the printers hold, and a load list
// that unblocks the most waiting jobs. Pure functions: the materials screen draws what they return.

const norm = (value) => String(value || '').trim().toUpperCase();

/** A loaded slot satisfies a need when the type matches and, where the need names a colour, the colour too. */
export function holds(slot, need) {
  if (!slot.type || norm(slot.type) !== norm(need.type)) return false;
  return !need.color || norm(slot.color).replace('#', '').slice(0, 6) === norm(need.color).replace('#', '').slice(0, 6);
}

/** Whether the queue says this slot serves the need (`slots_loaded`: a close colour within the farm's
 * tolerance too); without that list, the exact colour. */
function serves(printer, slot, need) {
  if (need.slots_loaded) return need.slots_loaded.some((s) => s.printer_id === printer.id && s.slot === slot.slot);
  return holds(slot, need);
}

/** Slots no waiting job needs: empty ones first, then ones holding a material nobody is waiting for. */
function spareSlots(printer, needs) {
  return (printer.materials || [])
    .filter((slot) => !slot.type || !needs.some((need) => need.jobs_waiting > 0 && serves(printer, slot, need)))
    .sort((a, b) => Number(Boolean(a.type)) - Number(Boolean(b.type)));
}

/**
 * For each material that waiting jobs need and no printer holds (most waiting jobs first), the online
 * printer to load it on and the slot it replaces. Each slot is suggested once; a need without a spare
 * slot anywhere is returned with `printer: null`.
 */
export function suggestLoads(needs, printers) {
  const blocked = needs.filter((n) => n.jobs_waiting > 0 && !(n.printers_loaded || []).length)
    .sort((a, b) => b.jobs_waiting - a.jobs_waiting || (b.grams_waiting || 0) - (a.grams_waiting || 0));
  const spare = new Map(printers.filter((p) => p.online).map((p) => [p.id, spareSlots(p, needs)]));
  const rank = (p) => [p.state === 'idle' ? 0 : 1, -(spare.get(p.id) || []).length, p.name];
  const order = printers.filter((p) => p.online).sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || x[1] - y[1] || String(x[2]).localeCompare(String(y[2]));
  });
  return blocked.map((need) => {
    const printer = order.find((p) => (spare.get(p.id) || []).length > 0) || null;
    const slot = printer ? spare.get(printer.id).shift() : null;
    return { need, printer, slot };
  });
}

/** Per printer: the waiting materials it holds now (the jobs it can take once idle). */
export function byPrinter(needs, printers) {
  return printers.map((printer) => ({
    printer,
    serves: needs.filter((n) => n.jobs_waiting > 0 && (n.printers_loaded || []).includes(printer.id)),
  }));
}
