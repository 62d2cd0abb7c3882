"""`bench.split_investigations_doc` on a tiny repository: the log moves unchanged, citations of
moved sections (also across a line break) point at it, the rest stay, a second run changes
nothing, and a section appended after the split moves on the next run."""

from __future__ import annotations

from pathlib import Path

from bench.split_investigations_doc import GUIDE, LOG, LOG_HEADING, run, slug

GUIDE_TEXT = """\
# Investigations

## Prices

See "Forward signs" below.

## Accuracy on adversarial worlds (issue 11): worst case first

Intro.

### Forward signs (this round)

```
# not a heading
```

### Main at the end of the session (2026-12-07, 15:45–16:05 UTC)

Figures.
"""

CODE = '''\
"""Docstring (docs/investigations.md "Forward
signs"), and docs/investigations.md "Prices", docs/investigations.md "No such section"."""

#: a comment (docs/investigations.md,
#: "Main at the end of the session")
X = 1  # docs/investigations.md without a title
'''


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "chainsleuth").mkdir()
    (tmp_path / GUIDE).write_text(GUIDE_TEXT, encoding="utf-8")
    (tmp_path / "chainsleuth" / "mod.py").write_text(CODE, encoding="utf-8")
    return tmp_path


def test_split_moves_rewrites_and_is_idempotent(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    first = run(root, write=True)
    assert first.moved == [
        "Accuracy on adversarial worlds (issue 11): worst case first",
        "Forward signs (this round)",
        "Main at the end of the session (2026-12-07, 15:45–16:05 UTC)",
    ]
    log = (root / LOG).read_text(encoding="utf-8")
    moved = GUIDE_TEXT[GUIDE_TEXT.index("## Accuracy") :]
    assert log.endswith(moved)  # the sections unchanged, headings too
    guide = (root / GUIDE).read_text(encoding="utf-8")
    assert guide.startswith("# Investigations\n\n## Prices\n")
    assert f"\n{LOG_HEADING}\n" in guide and "Figures." not in guide
    assert "# not a heading" not in guide  # a line in a code block is no section
    anchor = slug("Main at the end of the session (2026-12-07, 15:45–16:05 UTC)")
    assert anchor == "main-at-the-end-of-the-session-2026-12-07-15451605-utc"
    assert f"(accuracy-log.md#{anchor})" in guide
    assert 'See docs/accuracy-log.md "Forward signs".' in guide

    code = (root / "chainsleuth" / "mod.py").read_text(encoding="utf-8")
    assert '(docs/accuracy-log.md "Forward\nsigns")' in code
    assert '#: a comment (docs/accuracy-log.md,\n#: "Main at' in code
    assert 'docs/investigations.md "Prices"' in code  # that section stayed
    assert 'docs/investigations.md "No such section"' in code
    assert "docs/investigations.md without a title" in code
    assert len(first.rewritten) == 2
    assert [u.split(": ", 1)[1] for u in first.unmatched] == ['"No such section"']
    assert first.left_untitled == ["chainsleuth/mod.py:6"]

    second = run(root, write=True)
    assert second.changed == [] and second.moved == []
    assert (root / LOG).read_text(encoding="utf-8") == log


def test_a_section_appended_later_moves_to_the_end_of_the_log(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    run(root, write=True)
    new = "### A later branch (2026-12-07, 18:40 UTC)\n\nMore figures.\n"
    with (root / GUIDE).open("a", encoding="utf-8") as f:
        f.write("\n" + new)
    with (root / "chainsleuth" / "mod.py").open("a", encoding="utf-8") as f:
        f.write('# in docs/investigations.md ("A later branch")\n')
    again = run(root, write=True)
    assert again.moved == ["A later branch (2026-12-07, 18:40 UTC)"]
    assert (root / LOG).read_text(encoding="utf-8").endswith("Figures.\n\n" + new)
    guide = (root / GUIDE).read_text(encoding="utf-8")
    assert "More figures." not in guide and "a-later-branch-2026-12-07-1840-utc)" in guide
    assert '# in docs/accuracy-log.md ("A later branch")' in (
        root / "chainsleuth" / "mod.py"
    ).read_text(encoding="utf-8")
    assert run(root, write=False).changed == []


def test_the_whole_log_back_in_the_guide_wins_and_keeps_newer_log_sections(
    tmp_path: Path,
) -> None:
    root = _repo(tmp_path)
    run(root, write=True)
    extra = "### Written straight into the log\n\nText.\n"
    with (root / LOG).open("a", encoding="utf-8") as f:
        f.write("\n" + extra)
    (root / GUIDE).write_text(GUIDE_TEXT, encoding="utf-8")  # a merge brought the old file back
    run(root, write=True)
    log = (root / LOG).read_text(encoding="utf-8")
    assert log.count("### Forward signs (this round)") == 1
    assert log.endswith("Figures.\n\n" + extra)
    assert run(root, write=False).changed == []
