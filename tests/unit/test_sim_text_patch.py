"""The diffs the simulated lab's Ceph image is written with: applied exactly or refused.

``labctl/sim/text_patch.py`` applies a unified diff to one text; ``ceph_image`` applies
the ones ``PATCHES`` names for a release to the image's entries. The Reef image's
standby managers running their modules with the shipped diff is proven on the second
lab (its Reef roll ends with every manager up in Prometheus).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabctlError
from labctl.sim import ceph_image, text_patch

DIFF = """Why, in words; patch(1) skips this too.

--- a/etc/thing.conf
+++ b/etc/thing.conf
@@ -2,3 +2,4 @@
 two
-three
+THREE
+three and a half
 four
@@ -7,2 +8,2 @@
 seven
-eight
+EIGHT
"""
WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight")
TEXT = "".join(f"{word}\n" for word in WORDS)


def test_a_diff_names_its_file_and_changes_each_hunks_lines_where_it_says() -> None:
    diff = text_patch.parse(DIFF)
    assert diff.path == "/etc/thing.conf"
    assert [h.start for h in diff.hunks] == [2, 7]
    # The second hunk's line 7 is the text's line 7, though the first added one before it.
    assert text_patch.apply(TEXT, diff) == (
        "one\ntwo\nTHREE\nthree and a half\nfour\nfive\nsix\nseven\nEIGHT\n"
    )


def test_a_diff_whose_lines_are_not_there_is_refused_not_applied_elsewhere() -> None:
    moved = "zero\n" + TEXT  # the same lines, one further down: no offset search
    with pytest.raises(LabctlError, match=r"apply to /etc/thing\.conf: its hunk at line 2"):
        text_patch.apply(moved, text_patch.parse(DIFF), "thing.diff")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("just words\n", "not a unified diff of one file"),
        ("--- a/x\n+++ b/x\nstray line\n", "line 3: a hunk"),
        ("--- a/x\n+++ b/x\n@@ -1 +1 @@\n*odd\n", "line 4: not a diff line"),
        ("--- a/x\n+++ b/x\n", "has no hunk"),
        (DIFF + "--- a/y\n+++ b/y\n", "not a unified diff of one file"),
    ],
)
def test_what_is_not_one_files_diff_is_a_sentence(text: str, said: str) -> None:
    with pytest.raises(LabctlError, match=said):
        text_patch.parse(text)


def test_reefs_image_gets_the_shipped_diff_and_other_releases_none() -> None:
    (shipped,) = ceph_image.patch_files("18.2.7")
    assert shipped.parent == ceph_image.PATCH_DIR and shipped.is_file()
    assert ceph_image.patch_files("16.2.15") == [] and ceph_image.patch_files(None) == []
    diff = text_patch.parse(shipped.read_text(), shipped.name)
    assert diff.path == "/usr/share/ceph/mgr/mgr_module.py"
    (hunk,) = diff.hunks
    added = [line for line in hunk.new if line not in hunk.old]
    # One class attribute of MgrModule, the base of every module class, and its comment.
    assert "class MgrModule(ceph_module.BaseMgrModule, MgrModuleLoggingMixin):" in hunk.old
    assert added[-1] == "    NOTIFY_TYPES: List[NotifyType] = []"
    assert all(line.startswith("    # ") for line in added[:-1])


def test_the_image_entry_of_a_patched_file_is_its_patched_text(tmp_path: Path) -> None:
    patch = tmp_path / "thing.diff"
    patch.write_text(DIFF)
    source = tmp_path / "thing.conf"
    source.write_text(TEXT)
    found = {"etc/thing.conf": ("file", str(source)), "etc": ("dir", "")}
    changed = ceph_image.patched(found, [patch])
    assert changed == {"etc/thing.conf": ("data", text_patch.apply(TEXT, text_patch.parse(DIFF)))}
    assert source.read_text() == TEXT  # the root's file is left as it was
    with pytest.raises(LabctlError, match=r"changes /etc/thing\.conf, which the Ceph image lacks"):
        ceph_image.patched({"etc": ("dir", "")}, [patch])


def test_the_images_stamp_changes_with_its_diffs(tmp_path: Path) -> None:
    patch = tmp_path / "thing.diff"
    patch.write_text(DIFF)
    package = ceph_image.Package("ceph-mon", "18.2.7", (), ())
    plain = ceph_image.stamp("quay.io/ceph/ceph:v18.2.7", [package], "trixie")
    with_diff = ceph_image.stamp("quay.io/ceph/ceph:v18.2.7", [package], "trixie", [patch])
    patch.write_text(DIFF.replace("EIGHT", "Eight"))
    edited = ceph_image.stamp("quay.io/ceph/ceph:v18.2.7", [package], "trixie", [patch])
    assert len({plain, with_diff, edited}) == 3
