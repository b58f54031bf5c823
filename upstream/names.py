# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Does every name a module imports from a package exist in the tree?

Read with `ast`, never imported: ``from lp.a.b import c`` holds when
``lp/a/b/c.py`` or ``lp/a/b/c/__init__.py`` exists or ``c`` is bound at
module level in ``lp/a/b.py`` (or ``lp/a/b/__init__.py``): assigned,
defined, imported, or listed in ``__all__``; ``import lp.a.b`` holds when
the module exists.  Relative imports are resolved against the importing
module's package.  Standard library only.
"""

import ast
import os

__all__ = ["missing_names"]


def _module_file(root, dotted):
    """The file of module ``dotted`` under ``root``, or None."""
    base = os.path.join(root, *dotted.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _targets(node):
    """Names an assignment target binds."""
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts:
            yield from _targets(element)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)


def _listed_in_all(node):
    """The strings of an ``__all__ = [...]`` (or ``+=``) statement."""
    value = getattr(node, "value", None)
    if isinstance(value, (ast.List, ast.Tuple)):
        for element in value.elts:
            if isinstance(element, ast.Constant):
                if isinstance(element.value, str):
                    yield element.value


def _module_level(body):
    """The statements of a module body, into if/try/with/for blocks."""
    for node in body:
        yield node
        if isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        ):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(node, field, []))
        for handler in getattr(node, "handlers", []):
            yield handler
            yield from _module_level(handler.body)


class _Bindings:
    """Module-level names of the package's modules, read once each."""

    def __init__(self, root, package):
        self.root = root
        self.package = package
        self._cache = {}

    def of(self, dotted):
        """(names bound at module level, modules star-imported)."""
        if dotted not in self._cache:
            self._cache[dotted] = (set(), [])
            path = _module_file(self.root, dotted)
            if path is not None:
                try:
                    self._cache[dotted] = self._read(path, dotted)
                except SyntaxError:
                    # py_compile reports it; nothing is bound here.
                    pass
        return self._cache[dotted]

    def _read(self, path, dotted):
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
        names = set()
        stars = []
        is_package = path.endswith("__init__.py")
        for node in _module_level(tree.body):
            if isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            ):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(_targets(target))
                    if isinstance(target, ast.Name) and target.id == "__all__":
                        names.update(_listed_in_all(node))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                names.update(_targets(node.target))
                if getattr(node.target, "id", None) == "__all__":
                    names.update(_listed_in_all(node))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                module = _absolute(node, dotted, is_package)
                for alias in node.names:
                    if alias.name == "*":
                        stars.append(module)
                    else:
                        names.add(alias.asname or alias.name)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                names.update(_targets(node.target))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        names.update(_targets(item.optional_vars))
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
        return names, stars

    def binds(self, dotted, name, seen=None):
        """Is ``name`` bound at module level in ``dotted``?"""
        seen = set() if seen is None else seen
        if dotted in seen:
            return False
        seen.add(dotted)
        names, stars = self.of(dotted)
        if name in names:
            return True
        for star in stars:
            if star is None:
                continue
            if not self.in_package(star):
                # Names from outside the tree cannot be checked: accept.
                return True
            if self.binds(star, name, seen):
                return True
        return False

    def in_package(self, dotted):
        return dotted == self.package or dotted.startswith(self.package + ".")


def _absolute(node, dotted, is_package):
    """The absolute module an ImportFrom names, or None if unresolvable."""
    if node.level == 0:
        return node.module
    if dotted is None:
        return None
    parts = dotted.split(".")
    if not is_package:
        parts = parts[:-1]
    if node.level - 1 > len(parts) - 1:
        return None
    if node.level > 1:
        parts = parts[: -(node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _dotted_name(root, path):
    """The module a file under ``root`` is, or None outside ``root``."""
    rel = os.path.relpath(path, root)
    if rel.startswith(os.pardir + os.sep):
        return None
    rel = rel[: -len(".py")].split(os.sep)
    if rel[-1] == "__init__":
        rel = rel[:-1]
    return ".".join(rel)


def missing_names(root, package, paths):
    """Imports from ``package`` in ``paths`` that the tree does not have.

    ``root`` is the folder holding ``package``; ``paths`` are modules under
    it.  Returns ``[(path, line, description)]`` in file and line order.
    """
    bindings = _Bindings(root, package)
    missing = []
    for path in paths:
        with open(path, "rb") as f:
            source = f.read()
        try:
            tree = ast.parse(source, path)
        except SyntaxError as e:
            missing.append((path, e.lineno or 0, f"cannot parse: {e.msg}"))
            continue
        dotted = _dotted_name(root, path)
        is_package = path.endswith("__init__.py")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if not bindings.in_package(alias.name):
                        continue
                    if _module_file(root, alias.name) is None:
                        missing.append(
                            (path, node.lineno, f"no module {alias.name}")
                        )
            elif isinstance(node, ast.ImportFrom):
                module = _absolute(node, dotted, is_package)
                if module is None or not bindings.in_package(module):
                    continue
                if _module_file(root, module) is None:
                    missing.append((path, node.lineno, f"no module {module}"))
                    continue
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    if _module_file(root, f"{module}.{alias.name}"):
                        continue
                    if bindings.binds(module, alias.name):
                        continue
                    missing.append(
                        (
                            path,
                            node.lineno,
                            f"{module} has no {alias.name}",
                        )
                    )
    missing.sort(key=lambda item: (item[0], item[1]))
    return missing
