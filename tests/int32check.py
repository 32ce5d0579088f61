"""Checked 32-bit mode for viper kernels: run firmware viper code under CPython with every
integer intermediate checked to fit the ESP32-S3's 32-bit machine word.

Why: viper `int` is the machine word, 64-bit on the x86-64 unix port and 32-bit on the
ESP32-S3, so a kernel can pass every unix-port test and still overflow on the device. Here
each `@micropython.viper` function of a module is recompiled from its source with its
arithmetic rewritten (AST) into calls that compute the exact result and raise
`Int32Overflow` when it leaves int32 — the value the device would have wrapped. Pointer
casts follow the device: `ptr8`/`ptr16` loads are unsigned, `ptr32` loads are signed 32-bit,
and stores keep the low bits. Floor division and modulo of a negative value are refused
(their rounding is not something kernels should rely on). Non-viper code runs as CPython.
"""

from __future__ import annotations

import ast
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


class Int32Overflow(ArithmeticError):
    pass


def _check(value: Any, where: str) -> Any:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and not INT32_MIN <= value <= INT32_MAX:
        raise Int32Overflow(f"{where}: {value} does not fit in int32")
    return value


_OPS: dict[str, Callable[[int, int], int]] = {
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mult": lambda a, b: a * b,
    "LShift": lambda a, b: a << b,
    "RShift": lambda a, b: a >> b,
    "BitAnd": lambda a, b: a & b,
    "BitOr": lambda a, b: a | b,
    "BitXor": lambda a, b: a ^ b,
    "FloorDiv": lambda a, b: a // b,
    "Mod": lambda a, b: a % b,
}


class _Addr:
    """A machine address from uint(ptr): a buffer and a byte offset into it."""

    def __init__(self, mv: memoryview, offset: int):
        self.mv = mv
        self.offset = offset

    def _other(self, other: Any) -> int:
        """Addresses compare within one buffer (a loop walking a pointer to its end)."""
        if not isinstance(other, _Addr) or other.mv is not self.mv:
            raise Int32Overflow(f"comparing an address with {other!r}")
        return other.offset

    def __eq__(self, other: object) -> bool:
        return self.offset == self._other(other)

    def __ne__(self, other: object) -> bool:
        return self.offset != self._other(other)

    __hash__ = None  # type: ignore[assignment]

    def __lt__(self, other: Any) -> bool:
        return self.offset < self._other(other)

    def __le__(self, other: Any) -> bool:
        return self.offset <= self._other(other)

    def __gt__(self, other: Any) -> bool:
        return self.offset > self._other(other)

    def __ge__(self, other: Any) -> bool:
        return self.offset >= self._other(other)


def _binop(op: str, a: Any, b: Any, where: str) -> Any:
    if isinstance(a, _Addr) and isinstance(b, int) and op in ("Add", "Sub"):
        return _Addr(a.mv, a.offset + (b if op == "Add" else -b))
    if isinstance(b, _Addr) and isinstance(a, int) and op == "Add":
        return _Addr(b.mv, b.offset + a)
    # other arithmetic on an address (alignment tests) sees buffers as 16-byte aligned,
    # as MicroPython's heap allocates them
    a = a.offset if isinstance(a, _Addr) else a
    b = b.offset if isinstance(b, _Addr) else b
    _check(a, where)
    _check(b, where)
    if op in ("FloorDiv", "Mod") and (a < 0 or b <= 0):
        raise Int32Overflow(f"{where}: {op} of {a} by {b}: negative or zero operand")
    if op in ("LShift", "RShift") and not 0 <= b < 32:
        raise Int32Overflow(f"{where}: shift by {b} is outside 0..31")
    return _check(_OPS[op](a, b), where)


def _neg(a: Any, where: str) -> Any:
    return _check(-_check(a, where), where)


class _Ptr:
    def __init__(self, buf: Any, size: int, signed: bool):
        # the buffer a pointer points into and its offset there, so that addresses made
        # from it (uint) compare with those of other pointers into the same buffer
        if isinstance(buf, _Addr):
            self._base, self._off = buf.mv, buf.offset
            self._mv = buf.mv[buf.offset :]
        elif isinstance(buf, _Ptr):
            self._base, self._off = buf._base, buf._off
            self._mv = buf._mv
        else:
            self._base, self._off = memoryview(buf).cast("B"), 0
            self._mv = self._base
        self._size = size
        self._signed = signed

    def __getitem__(self, i: int) -> int:
        _check(i, "pointer index")
        at = i * self._size
        if i < 0 or at + self._size > len(self._mv):
            raise IndexError(f"pointer read at {i} outside a {len(self._mv)}-byte buffer")
        return int.from_bytes(self._mv[at : at + self._size], "little", signed=self._signed)

    def __setitem__(self, i: int, value: int) -> None:
        _check(i, "pointer index")
        _check(value, "pointer store")
        at = i * self._size
        if i < 0 or at + self._size > len(self._mv):
            raise IndexError(f"pointer write at {i} outside a {len(self._mv)}-byte buffer")
        bits = 8 * self._size
        self._mv[at : at + self._size] = (value & ((1 << bits) - 1)).to_bytes(self._size, "little")


def _uint(value: Any) -> Any:
    """uint(ptr) is the pointer's address; uint(int) reinterprets as unsigned (refused)."""
    if isinstance(value, _Ptr):
        return _Addr(value._base, value._off)
    raise Int32Overflow(f"uint({value!r}): only pointer addresses are supported")


def _is_viper(fn: ast.FunctionDef) -> bool:
    return any(ast.unparse(d) == "micropython.viper" for d in fn.decorator_list)


class _Rewrite(ast.NodeTransformer):
    def __init__(self, filename: str):
        self.filename = filename

    def _where(self, node: ast.AST) -> ast.Constant:
        return ast.Constant(f"{self.filename}:{getattr(node, 'lineno', '?')}")

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        op = type(node.op).__name__
        if op not in _OPS:
            raise Int32Overflow(f"{self.filename}:{node.lineno}: operator {op} not supported")
        call = ast.Call(
            ast.Name("_i32_binop", ast.Load()),
            [ast.Constant(op), node.left, node.right, self._where(node)],
            [],
        )
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        load = ast.parse(ast.unparse(node.target), mode="eval").body
        value = ast.BinOp(load, node.op, node.value)
        ast.copy_location(value, node)
        assign = ast.Assign([node.target], self.visit_BinOp(value))
        return ast.copy_location(assign, node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.USub):
            call = ast.Call(ast.Name("_i32_neg", ast.Load()), [node.operand, self._where(node)], [])
            return ast.copy_location(call, node)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            _check(node.value, f"{self.filename}:{node.lineno}: constant")
        return node


def _fake_micropython() -> types.ModuleType:
    mod = types.ModuleType("micropython")
    mod.const = lambda x: x  # type: ignore[attr-defined]
    mod.viper = lambda f: f  # type: ignore[attr-defined]
    mod.native = lambda f: f  # type: ignore[attr-defined]
    return mod


def load(path: Path) -> types.SimpleNamespace:
    """The module at `path`, its viper functions replaced by checked 32-bit versions."""
    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and _is_viper(node):
            node.decorator_list = []
            for i, stmt in enumerate(node.body):
                node.body[i] = _Rewrite(path.name).visit(stmt)
            # an argument annotated ptr8/ptr16/ptr32 arrives as that pointer, as in viper
            casts = []
            for arg in node.args.args:
                kind = ast.unparse(arg.annotation) if arg.annotation else ""
                if kind in ("ptr8", "ptr16", "ptr32"):
                    casts.append(ast.parse(f"{arg.arg} = {kind}({arg.arg})").body[0])
                arg.annotation = None
            node.body[:0] = casts
    ast.fix_missing_locations(tree)
    namespace: dict[str, Any] = {
        "__name__": path.stem + "_int32check",
        "_i32_binop": _binop,
        "_i32_neg": _neg,
        "ptr8": lambda b: _Ptr(b, 1, signed=False),
        "ptr16": lambda b: _Ptr(b, 2, signed=False),
        "ptr32": lambda b: _Ptr(b, 4, signed=True),
        "uint": _uint,
        "int": lambda v: v if isinstance(v, _Addr) else int(v),
    }
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = _fake_micropython()
    sys.path.insert(0, str(path.parent))
    try:
        exec(compile(tree, str(path), "exec"), namespace)
    finally:
        sys.path.remove(str(path.parent))
        if saved is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = saved
    return types.SimpleNamespace(**namespace)


def viper_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and _is_viper(n)]
