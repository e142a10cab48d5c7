"""The shipped profile library: model spellings, materials, heater limits, FabMatic, overrides."""

from __future__ import annotations

import pytest

from slicer.adapters.profile_files import load_profile_files, shipped_profile_files
from slicer.domain.errors import SliceError
from slicer.domain.profiles import ProfileConfigError, ProfileLibrary, normalise_model, parse_ini

LIBRARY = ProfileLibrary(shipped_profile_files())
BAMBU = ["bambu-a1", "bambu-a1-mini", "bambu-p1p", "bambu-p1s", "bambu-x1", "bambu-x1c", "bambu-x1e", "bambu-h2d"]


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
    ],
)
def test_model_spellings(spelling: str, printer_id: str) -> None:
    assert LIBRARY.printer_for(spelling).id == printer_id


def test_normalised_model_keys() -> None:
    assert normalise_model("Bambu Lab X1-Carbon") == normalise_model("x1 carbon") == "X1CARBON"
    assert normalise_model("BambuLab A1_mini") == "A1MINI"


@pytest.mark.parametrize("model", ["", "Ender 3", "X2C", "A1 maxi", "Prusa MK4"])
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
    (tmp_path / "printer" / "voron-24.ini").write_text(
        "; printfarm.product_name = Voron 2.4 350\n; printfarm.models = Voron 2.4, V2.4\n"
        "; printfarm.max_nozzle_temperature = 300\n; printfarm.max_bed_temperature = 120\n"
        "bed_shape = 0x0,350x0,350x350,0x350\nmax_print_height = 330\nnozzle_diameter = 0.4\n"
    )
    selected = ProfileLibrary(load_profile_files(tmp_path)).select("voron 2.4", "ABS", False)
    assert selected.name == "voron-24/abs"
    assert selected.printer.output == "gcode"
    with pytest.raises(SliceError, match="no FabMatic profile"):
        ProfileLibrary(load_profile_files(tmp_path)).select("voron 2.4", "ABS", True)


def test_two_files_claiming_one_model_is_a_configuration_error() -> None:
    files = shipped_profile_files()
    files["printer/my-x1c.ini"] = files["printer/bambu-x1c.ini"]
    with pytest.raises(ProfileConfigError, match="claimed by both"):
        ProfileLibrary(files)


def test_a_missing_override_folder_is_a_configuration_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProfileConfigError, match="does not exist"):
        load_profile_files(tmp_path / "nope")
