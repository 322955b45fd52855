"""The safe env.sh subset, the virt.sysprep reader and the bake.hcl reader."""

from __future__ import annotations

import pytest

from kvc.importer import bake, shell, sysprep_script


def values(text: str) -> dict[str, str]:
    env = shell.evaluate(text, "img-1")
    assert env.problems == []
    return {name: shell.template(value) for name, value in env.values.items()}


@pytest.mark.parametrize("idiom", [
    "$(echo ${ARCH} | sed 's/amd64/x86_64/;s/arm64/aarch64/')",
    '"$(echo "$ARCH" | sed "s/arm64/aarch64/;s/amd64/x86_64/")"',
    "$(echo $ARCH|sed -e 's/amd64/x86_64/g; s/arm64/aarch64/g')",
])
def test_arch_mapping_idiom_becomes_uname_arch(idiom: str) -> None:
    assert values(f"A={idiom}\nB=x.\"${{A}}\".y")["B"] == "x.{uname_arch}.y"


def test_literals_quotes_and_expansion() -> None:
    got = values("V=1.2\nexport A='it''s ${V}' # comment\nB=\"a $V ${V}\\\"\"\nC=${ARCH}-{x}\n"
                 "D=$FLAVOR\nE=\nF=a#b\nexport D E  # no-op")
    assert got == {"V": "1.2", "A": "its ${{V}}", "B": 'a 1.2 1.2"', "C": "{arch}-{{x}}",
                   "D": "img-1", "E": "", "F": "a#b"}


@pytest.mark.parametrize(("text", "col", "words"), [
    ("A=$(id)", 3, "command substitution"),
    ("A=`id`", 3, "shell syntax"),
    ("A=1; id", 4, "shell syntax"),
    ("A=1 id", 5, "only one assignment"),
    ("id", 1, "not an assignment"),
    ("  A+=1", 3, "not an assignment"),
    ("A=${B:-x}", 3, "${NAME}"),
    ("A=$HOME", 3, "not assigned above"),
    ("A=$((1+1))", 3, "command substitution"),
    ("A='x", 3, "unterminated"),
    ('A="x', 3, "unterminated"),
    ("A=x \\", 5, "continuation"),
    ("PATH=/tmp", 1, "changes the build script"),
    ("A=~/x", 3, "home directory"),
    ("A=$1", 3, "does not evaluate"),
])
def test_everything_else_is_a_problem_at_its_column(text: str, col: int, words: str) -> None:
    env = shell.evaluate(f"OK=1\n{text}\n", "img-1")
    assert [(p.line, p.col) for p in env.problems] == [(2, col)]
    assert words in env.problems[0].message
    assert "A" not in env.values


def test_render_per_arch() -> None:
    env = shell.evaluate("A=$(echo ${ARCH} | sed 's/amd64/x86_64/;s/arm64/aarch64/')-${ARCH}",
                         "img")
    assert shell.render(env.values["A"], "arm64") == "aarch64-arm64"
    assert shell.render(env.values["A"], "amd64") == "x86_64-amd64"


def test_virt_sysprep_continuation_keeps_the_newline() -> None:
    text = "# comment\n\n  update\nedit /etc/x:\\\n    s/a/b/\ninstall a,b\nselinux-relabel"
    assert [(c.name, c.argument, c.line) for c in sysprep_script.parse(text)] == [
        ("update", "", 3), ("edit", "/etc/x:\n    s/a/b/", 4), ("install", "a,b", 6),
        ("selinux-relabel", "", 7)]


def test_bake_registry_tags_platforms_and_comments() -> None:
    text = (
        'variable "FLAG" { default = "dev" }\nvariable "REPO" { default = "" }\n'
        'target "base" { platforms = ["linux/amd64"] }\n'
        'function "tag" {\n  params = [image, tag]\n'
        '  result = equal("", REPO) ? "docker.io/org/${image}:${tag}-${FLAG}" : '
        '"${REPO}/${image}:${tag}-${FLAG}"\n}\n'
        'target "x-1" {\n  inherits = ["base"]\n  tags = [\n    tag("x", "1"), // tag("x", "one")\n'
        '    /* tag("x", "uno") */ tag("x", "latest"),\n  ]\n  args = { FLAVOR = "x-1" }\n}\n')
    parsed = bake.parse(text)
    assert parsed.registry == "docker.io/org"
    assert parsed.tag_suffix_vars == ["FLAG"]
    target = parsed.target_for("x-1")
    assert target is not None and target.tags == [("x", "1"), ("x", "latest")]
    assert target.line == 8
    assert parsed.platforms(target) == ["linux/amd64"]
