"""The function's code archive: same sources, same bytes; junk, mtimes and modes change nothing."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pulumi
import pytest

from tests.conftest import ROOT
from versioned_lambda_api.archive import function_code_archive, source_files

SOURCES: dict[str, bytes] = {
    "handler.py": b"from helpers.util import shout\n\n\ndef handler(event, context):\n"
    b"    return shout(event)\n",
    "helpers/__init__.py": b"",
    "helpers/util.py": b"def shout(value):\n    return str(value).upper()\n",
}
EXPECTED_KEYS = ["handler.py", "helpers/__init__.py", "helpers/util.py"]

# Things that end up next to the sources: caches, editor files, tests, notes.
JUNK_A: dict[str, bytes] = {
    "__pycache__/handler.cpython-312.pyc": b"\x00bytecode",
    ".handler.py.swp": b"vim swap",
    "handler.py~": b"emacs backup",
    ".DS_Store": b"\x00\x00\x00\x01Bud1",
    "#handler.py#": b"emacs autosave",
    "tests/test_handler.py": b"def test_handler(): ...\n",
    "tests/__init__.py": b"",
    "test_x.py": b"def test_x(): ...\n",
    "notes.txt": b"todo\n",
}
JUNK_B: dict[str, bytes] = {
    ".idea/workspace.xml": b"<project/>",
    ".idea/scratch.py": b"print('scratch')\n",
    "helpers/__pycache__/x.pyc": b"\x00bytecode",
    "helpers/__pycache__/util.cpython-313.pyc": b"\x00bytecode",
    ".mypy_cache/3.13/handler.data.json": b"{}",
    ".mypy_cache/3.13/handler.meta.json": b"{}",
    ".venv/lib/site.py": b"",
    "conftest.py": b"import pytest\n",
    "helpers/util_test.py": b"def test_util(): ...\n",
    "helpers/tests/test_util.py": b"def test_util(): ...\n",
    "helpers/tests/factories.py": b"def make_event(): ...\n",
    ".#handler.py": b"emacs lock",
    "weird.py/inside.txt": b"a folder whose name ends in .py",
}

FIXED_DATE = (1990, 1, 1, 0, 0, 0)


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def file_assets(archive: pulumi.AssetArchive) -> dict[str, bytes]:
    """Archive name to the content of the file it ships."""
    contents: dict[str, bytes] = {}
    for name, asset in archive.assets.items():
        assert isinstance(asset, pulumi.FileAsset), name
        contents[name] = Path(asset.path).read_bytes()
    return contents


def engine_zip(archive: pulumi.AssetArchive) -> bytes:
    """The zip Pulumi's engine uploads: sorted names, Deflate, every entry dated 1990-01-01."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as written:
        for name, content in sorted(file_assets(archive).items()):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            written.writestr(info, content)
    return buffer.getvalue()


def engine_hash(archive: pulumi.AssetArchive) -> str:
    """The hash Pulumi diffs an asset archive by: sha256 of a tar with mode 0o600, no mtime."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as written:
        for name, content in sorted(file_assets(archive).items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o600
            written.addfile(info, io.BytesIO(content))
    return hashlib.sha256(buffer.getvalue()).hexdigest()


@pytest.fixture
def copy_a(tmp_path: Path) -> Path:
    root = write_tree(tmp_path / "a", {**SOURCES, **JUNK_A})
    for name in SOURCES:
        (root / name).chmod(0o644)
    return root


@pytest.fixture
def copy_b(tmp_path: Path) -> Path:
    """The same sources, checked out at another time, with other junk and modes."""
    root = write_tree(tmp_path / "b", {**JUNK_B, **SOURCES})
    for index, name in enumerate(sorted(SOURCES)):
        os.utime(root / name, (1_700_000_000 + index, 1_700_000_000 + index * 86_400))
        (root / name).chmod(0o755 if index % 2 else 0o600)
    return root


def test_source_files_select_only_the_python_sources(copy_a: Path, copy_b: Path) -> None:
    for root in (copy_a, copy_b):
        selected = source_files(root)
        assert list(selected) == EXPECTED_KEYS
        assert {key: path.read_bytes() for key, path in selected.items()} == SOURCES
        assert all(path == root / key for key, path in selected.items())


@pytest.mark.parametrize("junk", sorted({**JUNK_A, **JUNK_B}))
def test_each_kind_of_junk_is_left_out(tmp_path: Path, junk: str) -> None:
    root = write_tree(tmp_path, {**SOURCES, junk: b"junk\n"})
    assert list(source_files(root)) == EXPECTED_KEYS


def test_dangling_symlink_named_like_a_source_is_left_out(tmp_path: Path) -> None:
    """An editor lock link or a half-removed file must not make the archive unreadable."""
    root = write_tree(tmp_path, SOURCES)
    (root / "helpers" / "gone.py").symlink_to(root / "nowhere.py")
    assert list(source_files(root)) == EXPECTED_KEYS


def test_archive_ships_each_source_as_a_file_asset(copy_a: Path) -> None:
    archive = function_code_archive(copy_a)
    assert isinstance(archive, pulumi.AssetArchive)
    assert file_assets(archive) == SOURCES


def test_polluted_copies_produce_identical_archive_bytes(copy_a: Path, copy_b: Path) -> None:
    archive_a, archive_b = function_code_archive(copy_a), function_code_archive(copy_b)
    zip_a = engine_zip(archive_a)
    assert zip_a == engine_zip(archive_b)
    assert engine_hash(archive_a) == engine_hash(archive_b)
    with zipfile.ZipFile(io.BytesIO(zip_a)) as unpacked:
        assert unpacked.namelist() == EXPECTED_KEYS
        assert {name: unpacked.read(name) for name in unpacked.namelist()} == SOURCES


def test_one_changed_byte_changes_the_archive(copy_a: Path, copy_b: Path) -> None:
    util = copy_b / "helpers" / "util.py"
    util.write_bytes(util.read_bytes().replace(b"upper", b"lower"))
    archive_a, archive_b = function_code_archive(copy_a), function_code_archive(copy_b)
    assert engine_zip(archive_a) != engine_zip(archive_b)
    assert engine_hash(archive_a) != engine_hash(archive_b)


@pytest.mark.parametrize(
    ("name", "content"),
    [("helpers/extra.py", b"EXTRA = 1\n"), ("helpers/empty/__init__.py", b"")],
)
def test_a_new_source_file_changes_the_archive(
    copy_a: Path, copy_b: Path, name: str, content: bytes
) -> None:
    write_tree(copy_b, {name: content})
    assert name in source_files(copy_b)
    assert engine_zip(function_code_archive(copy_a)) != engine_zip(function_code_archive(copy_b))


def test_touching_mtimes_and_modes_only_keeps_the_archive(copy_b: Path) -> None:
    before = engine_zip(function_code_archive(copy_b))
    hash_before = engine_hash(function_code_archive(copy_b))
    for name in SOURCES:
        os.utime(copy_b / name, (2_000_000_000, 2_000_000_000))
        (copy_b / name).chmod(0o700)
    after = function_code_archive(copy_b)
    assert engine_zip(after) == before
    assert engine_hash(after) == hash_before


def test_project_function_folder_ships_its_handler_and_nothing_hidden() -> None:
    folder = ROOT / "function"
    selected = source_files(folder)
    assert "handler.py" in selected
    top_level_sources = {
        path.name
        for path in folder.glob("*.py")
        if path.is_file() and not path.name.startswith((".", "test_"))
    }
    assert top_level_sources <= set(selected)
    for key, path in selected.items():
        assert key.endswith(".py")
        assert not any(part.startswith(".") or part == "__pycache__" for part in key.split("/"))
        assert path.resolve() == (folder / key).resolve()


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"notes.txt": b"todo\n", "handler.pyc": b"\x00"},
        {"tests/test_handler.py": b"", "__pycache__/x.py": b"", ".hidden.py": b""},
    ],
    ids=["empty", "no-py-files", "only-excluded-py-files"],
)
def test_folder_without_sources_is_refused_by_name(tmp_path: Path, files: dict[str, bytes]) -> None:
    root = write_tree(tmp_path / "function", files)
    root.mkdir(exist_ok=True)
    with pytest.raises(FileNotFoundError, match=r"holds no \.py files") as raised:
        source_files(root)
    assert str(root) in str(raised.value)
    with pytest.raises(FileNotFoundError):
        function_code_archive(root)


@pytest.mark.parametrize("make_file", [False, True], ids=["missing", "a-file-not-a-folder"])
def test_missing_folder_is_refused_by_name(tmp_path: Path, make_file: bool) -> None:
    root = tmp_path / "function"
    if make_file:
        root.write_bytes(b"def handler(event, context): ...\n")
    with pytest.raises(FileNotFoundError, match="does not exist") as raised:
        source_files(root)
    assert str(root) in str(raised.value)
    with pytest.raises(FileNotFoundError):
        function_code_archive(root)
