// What a printer calls the place a material is loaded: AMS trays (Bambu Lab), a Spoolman spool
// (Klipper), or materials the operator set (Prusa, OctoPrint).

export function slotLabel(p, m) {
  if (p.protocol === 'bambu_lan' || !p.protocol) {
    return m.slot === 254 ? 'External spool' : m.slot >= 128 ? `AMS HT ${m.slot - 127}` : `AMS ${Math.floor(m.slot / 4) + 1}-${(m.slot % 4) + 1}`;
  }
  if (p.materials_source === 'printer') return p.protocol === 'moonraker' ? 'Spoolman spool' : 'Loaded';
  return (p.materials || []).length > 1 ? `Extruder ${m.slot + 1} (set by operator)` : 'Loaded (set by operator)';
}
