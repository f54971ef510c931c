"""Reading an HTML document as a browser does: Debian's chromium, headless, with a fresh
profile and nothing fetched from the network; its DOM (after rendering) as a small tree."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from runner.audit.reports.pdf import FLAGS

CHROMIUM = shutil.which("chromium")


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        out: list[Node] = []
        for c in self.children:
            if isinstance(c, Node):
                if (
                    (tag is None or c.tag == tag)
                    and (cls is None or cls in c.classes())
                    and all(c.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
                ):
                    out.append(c)
                out += c.all(tag, cls, **attrs)
        return out

    def one(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.all(tag, cls, **attrs)
        assert len(found) == 1, (tag, cls, attrs, len(found))
        return found[0]


class _Tree(HTMLParser):
    VOID = frozenset({"meta", "br", "col", "img", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#document", {}, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_endtag(self, tag: str) -> None:
        n: Node | None = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data: str) -> None:
        self.cur.children.append(data)


def chromium(page: Path, tmp_path: Path, *args: str) -> str:
    """Debian's chromium, headless, with a fresh profile and nothing fetched from the network."""
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(dir=tmp_path, prefix="profile-")
    done = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,  # the same as the report's PDF printing
            f"--user-data-dir={profile}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return done.stdout


def dom(page: Path, tmp_path: Path) -> Node:
    tree = _Tree()
    tree.feed(chromium(page, tmp_path, "--dump-dom"))
    return tree.root
