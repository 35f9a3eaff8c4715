"""The file tree of a filesystem image, as its writers see it: pure, no host access.

Built from a host tree scan plus the files and special files a layout declares. Writers walk it
in pre-order; every directory's children are kept in byte order of their names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from dfsbuild.trees.walk import TreeEntry

DIR_MODE = 0o755


@dataclass(slots=True, eq=False)
class FsNode:
    """One object of an image's tree."""

    name: str                  # base name; "" for the root
    path: str                  # "/"-separated from the root; "" for the root
    kind: str                  # dir | file | symlink | char | block | fifo | socket
    mode: int                  # permission bits
    size_bytes: int = 0        # regular files: content size; symlinks: target length
    source: str | None = None  # where the content comes from (opaque to writers)
    content: str = ""          # content id (git blob id), or the key of a nested image
    image: str | None = None   # nested image whose output is the content
    target: str = ""           # symlink text
    major: int = 0
    minor: int = 0
    inode: tuple[int, int] | None = None
    link_to: FsNode | None = None  # set on later names of a hard-linked file
    children: list[FsNode] = field(default_factory=list)

    def walk(self) -> Iterator[FsNode]:
        """Pre-order, children in byte order of their names (no recursion: any depth)."""
        stack: list[FsNode] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    @property
    def data_id(self) -> str | None:
        """What a Sink notes for this file's bytes: a host file's content id, or
        ``image:KEY`` for a nested image (its content is a key, not a digest of its bytes);
        None when not known."""
        if not self.content:
            return None
        return f"image:{self.content}" if self.image is not None else self.content

    def manifest_row(self) -> list[object]:
        """Everything about this node that can change an image's bytes."""
        link = self.link_to.path if self.link_to is not None else None
        return [self.path, self.kind, self.mode, self.content, self.target, self.major,
                self.minor, link, self.image]


def _name_key(node: FsNode) -> bytes:
    return node.name.encode("utf-8", "surrogateescape")


class TreeBuilder:
    """Collects nodes by path, then links them into a sorted tree."""

    def __init__(self, root_mode: int = DIR_MODE) -> None:
        self.root = FsNode("", "", "dir", root_mode)
        self._nodes: dict[str, FsNode] = {"": self.root}

    def add_scan(self, entries: list[TreeEntry]) -> None:
        """Add a host tree scan (``entries[0]`` is its root directory)."""
        if entries:
            self.root.mode = entries[0].mode
        for e in entries[1:]:
            node = FsNode(
                e.relpath.rsplit("/", 1)[-1], e.relpath, e.kind, e.mode, e.size_bytes,
                source=e.host_path if e.kind == "file" else None, content=e.digest or "",
                target=e.target or "", major=e.major, minor=e.minor, inode=e.inode,
            )
            self.put(node)

    def put(self, node: FsNode) -> FsNode:
        """Add or replace the node at ``node.path``, creating parent directories (0755)."""
        old = self._nodes.get(node.path)
        if old is not None and old.kind == "dir" and node.kind == "dir":
            old.mode = node.mode
            return old
        if old is not None and old.kind == "dir":
            raise ValueError(f"{node.path!r} is a directory in the tree; it cannot be replaced "
                             f"by a {node.kind}")
        parent_path = node.path.rsplit("/", 1)[0] if "/" in node.path else ""
        parent = self._nodes.get(parent_path)
        if parent is None:
            parent = self.put(FsNode(parent_path.rsplit("/", 1)[-1], parent_path, "dir",
                                     DIR_MODE))
        elif parent.kind != "dir":
            raise ValueError(f"{parent_path!r} is a {parent.kind}, not a directory, so "
                             f"{node.path!r} cannot be placed in it")
        if old is not None:
            parent.children.remove(old)
        parent.children.append(node)
        self._nodes[node.path] = node
        return node

    def finish(self) -> FsNode:
        """Sort every directory and mark hard links (first name in pre-order holds the data)."""
        for node in self._nodes.values():
            node.children.sort(key=_name_key)
        holders: dict[tuple[int, int], FsNode] = {}
        for node in self.root.walk():
            if node.inode is None:
                continue
            holder = holders.setdefault(node.inode, node)
            node.link_to = holder if holder is not node else None
        return self.root


def manifest(root: FsNode) -> list[list[object]]:
    return [node.manifest_row() for node in root.walk()]
