"""The shipped profile library: model spellings, materials, heater limits, FabMatic, overrides."""

from __future__ import annotations

import pytest

from printer_simulator.catalog import default_fleet, parse_printer
from slicer.adapters.profile_files import load_profile_files, shipped_profile_files
from slicer.domain.errors import SliceError
from slicer.domain.profiles import ProfileConfigError, ProfileLibrary, normalise_model, parse_ini

LIBRARY = ProfileLibrary(shipped_profile_files())
BAMBU = ["bambu-a1", "bambu-a1-mini", "bambu-p1p", "bambu-p1s", "bambu-x1", "bambu-x1c", "bambu-x1e", "bambu-h2d"]
PLAIN_GCODE = [
    "prusa-mk4", "prusa-mk3s", "prusa-xl", "prusa-mini", "voron-24-350", "voron-24-300", "voron-24-250", "creality-k1",
    "creality-ender-3",
]  # fmt: skip


@pytest.mark.parametrize(
    ("spelling", "printer_id"),
    [
        ("X1C", "bambu-x1c"),
        ("x1c", "bambu-x1c"),
        ("X1 Carbon", "bambu-x1c"),
        ("Bambu Lab X1-Carbon", "bambu-x1c"),
        ("BL-P001", "bambu-x1c"),
        ("X1", "bambu-x1"),
        ("X1E", "bambu-x1e"),
        ("P1P", "bambu-p1p"),
        ("P1S", "bambu-p1s"),
        (" p1s ", "bambu-p1s"),
        ("C12", "bambu-p1s"),
        ("A1", "bambu-a1"),
        ("A1 mini", "bambu-a1-mini"),
        ("A1M", "bambu-a1-mini"),
        ("a1mini", "bambu-a1-mini"),
        ("Bambu Lab A1 mini", "bambu-a1-mini"),
        ("H2D", "bambu-h2d"),
        ("bambu_h2d", "bambu-h2d"),
        ("Prusa MK4", "prusa-mk4"),
        ("Original Prusa MK4", "prusa-mk4"),
        ("MK4", "prusa-mk4"),
        ("Prusa MK3S", "prusa-mk3s"),
        ("Original Prusa i3 MK3S+", "prusa-mk3s"),
        ("mk3s+", "prusa-mk3s"),
        ("Prusa XL", "prusa-xl"),
        ("Original Prusa MINI+", "prusa-mini"),
        ("Prusa Mini", "prusa-mini"),
        ("Voron 2.4", "voron-24-350"),
        ("voron 2.4r2", "voron-24-350"),
        ("V2.4", "voron-24-350"),
        ("Voron 2.4 300", "voron-24-300"),
        ("Voron 2.4 250", "voron-24-250"),
        ("Creality K1", "creality-k1"),
        ("K1C", "creality-k1"),
        ("Ender 3", "creality-ender-3"),
        ("Creality Ender-3 V2", "creality-ender-3"),
        ("ender-3 pro", "creality-ender-3"),
    ],
)
def test_model_spellings(spelling: str, printer_id: str) -> None:
    assert LIBRARY.printer_for(spelling).id == printer_id


def test_normalised_model_keys() -> None:
    assert normalise_model("Bambu Lab X1-Carbon") == normalise_model("x1 carbon") == "X1CARBON"
    assert normalise_model("BambuLab A1_mini") == "A1MINI"
    assert normalise_model("Original Prusa MK4") == normalise_model("prusa mk4") == "MK4"
    assert normalise_model("Creality Ender-3") == "ENDER3"
    assert normalise_model("Voron 2.4") == "VORON2.4", "Voron is the model's name, not a brand prefix"


@pytest.mark.parametrize("protocol", ["moonraker", "prusalink", "octoprint"])
def test_the_simulated_fleets_plain_gcode_printers_have_profiles(protocol: str) -> None:
    """The model each simulated G-code printer registers with (as the devstack and its fleet name it)
    selects a plain G-code profile."""
    model = parse_printer({"serial": f"sim-{protocol}", "protocol": protocol}).model
    printer = LIBRARY.printer_for(model)
    assert printer.id in PLAIN_GCODE and printer.output == "gcode", (model, printer.id)
    default = {p.name: p.model for p in default_fleet()}
    assert LIBRARY.printer_for(default["voron-01"]).id == "voron-24-350"
    assert LIBRARY.printer_for(default["mk4-01"]).id == "prusa-mk4"


@pytest.mark.parametrize("model", ["", "Ender 5", "X2C", "A1 maxi", "Prusa MK3", "Voron Trident", "K1 Max", "Prusa"])
def test_unknown_models_have_no_profile(model: str) -> None:
    with pytest.raises(SliceError, match="no printer profile") as error:
        LIBRARY.select(model, "PLA", False)
    assert error.value.stage == "profile"
    assert "X1C" in error.value.message  # it says which models it knows


@pytest.mark.parametrize(
    ("material", "material_id"),
    [("PLA", "pla"), ("pla", "pla"), ("PLA Matte", "pla"), ("petg_hf", "petg"), ("PETG", "petg"), ("ABS", "abs"),
     ("ASA", "asa"), ("TPU", "tpu"), ("PA", "pa"), ("nylon", "pa"), ("PC", "pc")],
)  # fmt: skip
def test_material_types(material: str, material_id: str) -> None:
    assert LIBRARY.select("X1C", material, False).material.id == material_id


@pytest.mark.parametrize("material", ["PLA-CF", "PVA", "wood", ""])
def test_unknown_materials_have_no_profile(material: str) -> None:
    with pytest.raises(SliceError, match="no material profile") as error:
        LIBRARY.select("X1C", material, False)
    assert error.value.stage == "profile"


@pytest.mark.parametrize("material", ["ABS", "ASA", "PC", "PA"])
def test_a1_mini_bed_is_too_cool_for_engineering_materials(material: str) -> None:
    with pytest.raises(SliceError, match="bed heats to 80") as error:
        LIBRARY.select("A1 mini", material, False)
    assert error.value.stage == "profile"
    LIBRARY.select("X1C", material, False)


def test_selection_names_and_load_order() -> None:
    plain = LIBRARY.select("P1S", "petg", False)
    assert plain.name == "bambu-p1s/petg"
    assert [f.name for f in plain.files] == ["printer/bambu-p1s.ini", "filament/petg.ini", "print/standard-0.20mm.ini"]
    fab = LIBRARY.select("P1S", "petg", True)
    assert fab.name == "bambu-p1s/petg+fabmatic"
    assert [f.name for f in fab.files][1] == "fabmatic/bambu-p1s.ini"
    assert fab.digest != plain.digest


@pytest.mark.parametrize("printer_id", BAMBU)
def test_every_bambu_printer_profile(printer_id: str) -> None:
    printer = LIBRARY.printers[printer_id]
    keys, _ = parse_ini(printer.file.text)
    assert printer.output == "gcode.3mf"
    assert printer.model_id and printer.product_name.startswith("Bambu Lab")
    assert keys["gcode_flavor"] == "marlin2"
    assert keys["nozzle_diameter"] == "0.4"
    assert keys["use_relative_e_distances"] == "1" and keys["layer_gcode"] == "G92 E0"
    assert "G28" in keys["start_gcode"]
    assert "[first_layer_temperature]" in keys["start_gcode"]
    assert "[first_layer_bed_temperature]" in keys["start_gcode"]
    assert "M104 S0" in keys["end_gcode"]
    assert printer.bed.width > 150 and printer.bed.max_height >= 180
    assert printer.fabmatic is not None
    fab_keys, _ = parse_ini(printer.fabmatic.text)
    assert "M190 R" in fab_keys["end_gcode"] and "push towards the front edge" in fab_keys["end_gcode"]


@pytest.mark.parametrize("printer_id", PLAIN_GCODE)
def test_every_plain_gcode_printer_profile(printer_id: str) -> None:
    printer = LIBRARY.printers[printer_id]
    keys, _ = parse_ini(printer.file.text)
    assert printer.output == "gcode" and not printer.model_id and printer.fabmatic is None
    assert keys["gcode_flavor"] in ("marlin", "marlin2")
    assert keys["nozzle_diameter"] == "0.4"
    assert keys["use_relative_e_distances"] == "1" and keys["layer_gcode"] == "G92 E0"
    start, end = keys["start_gcode"].split("\\n"), keys["end_gcode"].split("\\n")
    commands = [line.split(";")[0].strip() for line in start]
    home = next(i for i, c in enumerate(commands) if c.startswith("G28"))
    bed = commands.index("M190 S[first_layer_bed_temperature]")
    nozzle = commands.index("M109 S[first_layer_temperature]")
    purge = next(i for i, c in enumerate(commands) if c.startswith("G1") and " E" in c)
    assert home < bed and home < nozzle < purge, "home, then heat, then purge"
    assert {"M104 S0", "M140 S0", "M84"} <= {line.split(";")[0].strip() for line in end}
    bambu_only = ("M620", "M621", "M991", "M1002", "T255")
    assert not [line for line in start + end if line.startswith(bambu_only)], "no Bambu-only commands"
    if printer_id.startswith("prusa-"):
        model_check = next(c for c in commands if c.startswith("M862.3"))
        assert normalise_model(model_check.split('"')[1]) == normalise_model(printer.spellings[0])
    assert printer.bed.width >= 180 and printer.bed.max_height >= 180


def test_plain_gcode_build_volumes_and_heater_limits() -> None:
    def volume(pid: str) -> tuple[float, float, float, float, float]:
        p = LIBRARY.printers[pid]
        return (p.bed.width, p.bed.depth, p.bed.max_height, p.max_nozzle_temperature, p.max_bed_temperature)

    assert volume("prusa-mk4") == (250, 210, 220, 290, 120)
    assert volume("prusa-mk3s") == (250, 210, 210, 300, 120)
    assert volume("prusa-xl") == (360, 360, 360, 290, 120)
    assert volume("prusa-mini") == (180, 180, 180, 280, 100)
    assert volume("voron-24-350")[:3] == (350, 350, 330)
    assert volume("voron-24-250")[:3] == (250, 250, 230)
    assert volume("creality-k1") == (220, 220, 250, 300, 100)
    assert volume("creality-ender-3") == (220, 220, 250, 260, 100)


@pytest.mark.parametrize(("model", "material"), [("Ender 3", "PC"), ("Ender 3", "PA")])
def test_a_stock_hotend_refuses_hot_materials(model: str, material: str) -> None:
    with pytest.raises(SliceError, match="nozzle heats to") as error:
        LIBRARY.select(model, material, False)
    assert error.value.stage == "profile"
    assert LIBRARY.select("Prusa MK4", material, False).name == f"prusa-mk4/{material.lower()}"


def test_plain_gcode_selection_and_fabmatic() -> None:
    assert LIBRARY.select("Voron 2.4", "ASA", False).name == "voron-24-350/asa"
    assert LIBRARY.select("Prusa MK4", "PC", False).name == "prusa-mk4/pc"
    with pytest.raises(SliceError, match="no FabMatic profile"):
        LIBRARY.select("Prusa MK4", "PLA", True)


def test_published_build_volumes_and_model_ids() -> None:
    def volume(pid: str) -> tuple[float, float, float, str]:
        p = LIBRARY.printers[pid]
        return (p.bed.width, p.bed.depth, p.bed.max_height, p.model_id)

    assert volume("bambu-x1c") == (256, 256, 250, "BL-P001")
    assert volume("bambu-p1s") == (256, 256, 250, "C12")
    assert volume("bambu-a1") == (256, 256, 256, "N2S")
    assert volume("bambu-a1-mini") == (180, 180, 180, "N1")
    assert volume("bambu-h2d")[2:] == (325, "O1D")


def test_materials_have_density_and_temperatures() -> None:
    for material in LIBRARY.materials.values():
        assert 0.9 < material.density < 1.5
        assert material.diameter == 1.75
        assert 180 <= material.nozzle_temperature <= 300


def test_an_override_replaces_the_shipped_file_and_changes_the_digest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    shipped = LIBRARY.select("X1C", "PETG", False)
    (tmp_path / "filament").mkdir()
    text = shipped_profile_files()["filament/petg.ini"].replace("temperature = 245", "temperature = 240")
    (tmp_path / "filament" / "petg.ini").write_text(text)
    overridden = ProfileLibrary(load_profile_files(tmp_path)).select("X1C", "PETG", False)
    assert overridden.name == shipped.name
    assert overridden.material.file.text == text
    assert overridden.digest != shipped.digest
    assert (
        ProfileLibrary(load_profile_files(tmp_path)).select("X1C", "PLA", False).digest
        == LIBRARY.select("X1C", "PLA", False).digest
    )


def test_an_override_can_add_a_printer_with_plain_gcode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "printer").mkdir()
    (tmp_path / "printer" / "voron-trident-300.ini").write_text(
        "; printfarm.product_name = Voron Trident 300\n; printfarm.models = Voron Trident, Trident\n"
        "; printfarm.max_nozzle_temperature = 300\n; printfarm.max_bed_temperature = 120\n"
        "bed_shape = 0x0,350x0,350x350,0x350\nmax_print_height = 330\nnozzle_diameter = 0.4\n"
    )
    selected = ProfileLibrary(load_profile_files(tmp_path)).select("voron trident", "ABS", False)
    assert selected.name == "voron-trident-300/abs"
    assert selected.printer.output == "gcode"
    with pytest.raises(SliceError, match="no FabMatic profile"):
        ProfileLibrary(load_profile_files(tmp_path)).select("voron trident", "ABS", True)


def test_two_files_claiming_one_model_is_a_configuration_error() -> None:
    files = shipped_profile_files()
    files["printer/my-x1c.ini"] = files["printer/bambu-x1c.ini"]
    with pytest.raises(ProfileConfigError, match="claimed by both"):
        ProfileLibrary(files)
    files = shipped_profile_files()
    files["printer/my-mk4.ini"] = files["printer/prusa-mk4.ini"].replace("MK4IS", "MK4 Input Shaper")
    with pytest.raises(ProfileConfigError, match="claimed by both"):
        ProfileLibrary(files)


def test_an_override_replaces_a_shipped_plain_gcode_printer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A farm whose Voron 2.4 machines are 300 mm ones replaces the shipped 350 mm file of the same name."""
    (tmp_path / "printer").mkdir()
    text = shipped_profile_files()["printer/voron-24-350.ini"]
    smaller = text.replace("350x0,350x350,0x350", "300x0,300x300,0x300")
    (tmp_path / "printer" / "voron-24-350.ini").write_text(smaller.replace("height = 330", "height = 280"))
    overridden = ProfileLibrary(load_profile_files(tmp_path)).select("Voron 2.4", "ASA", False)
    assert (overridden.printer.bed.width, overridden.printer.bed.max_height) == (300, 280)
    assert overridden.name == "voron-24-350/asa"
    assert overridden.digest != LIBRARY.select("Voron 2.4", "ASA", False).digest


def test_a_missing_override_folder_is_a_configuration_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProfileConfigError, match="does not exist"):
        load_profile_files(tmp_path / "nope")
