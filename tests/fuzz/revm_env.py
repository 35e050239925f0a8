"""A thin revm environment for the fuzz suite: the Vyper sources compiled with the vyper API,
run in pyrevm, called with eth_abi encoding.

The stateful model spends its time executing bytecode: py-evm (titanoboa) interprets about
3 us per opcode, revm about a hundred times less. This module gives the model what it uses
of titanoboa and no more: `load` (compile and deploy), `at`, calls and transactions by ABI
name, `anchor` (snapshot and revert), the block clock, and reverts decoded to their
`Error(string)` text. Traces, source maps and debugging stay with titanoboa
(`FUZZ_BACKEND=boa` runs the model there, and the directed tests use it).

Compiled artifacts are cached on disk (`.cache/revm/`), keyed by the hash of every source
under contracts/ and snekmate, the compiler version and the settings: compiling the engine
takes seconds and every worker process would repeat it.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import vyper
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.decoding import ContextFramesBytesIO, TupleDecoder
from eth_abi.encoding import TupleEncoder
from eth_abi.registry import registry
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from pyrevm import EVM, BlockEnv, Env
from vyper.compiler import compile_from_file_input
from vyper.compiler.input_bundle import FileInput, FilesystemInputBundle
from vyper.compiler.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
CACHE = ROOT / ".cache" / "revm"
EVM_VERSION = "cancun"  # as ape-config.yaml compiles for anvil
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
DEPLOYER = "0x00000000000000000000000000000000000B0A57"
GAS = 30_000_000  # per call, as a block's worth


class Revert(Exception):
    """A call or deployment that reverted or halted. `reason` is its `Error(string)` text
    when the revert carries one, else the raw error; `output` the revert data."""

    def __init__(self, reason: str, output: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.output = output


def _error(err: RuntimeError) -> Revert:
    text = str(err.args[0]) if err.args else str(err)
    match = re.search(r"output: 0x([0-9a-fA-F]*)", text)
    output = bytes.fromhex(match.group(1)) if match else b""
    if output[:4] == ERROR_SELECTOR:
        (reason,) = abi_decode(["string"], output[4:])
        return Revert(reason, output)
    return Revert(text, output)


# ------------------------------------------------------------------ compilation


@cache
def _search_paths() -> tuple[Path, ...]:
    return (ROOT, *(Path(p) for p in sys.path if p and Path(p).is_dir()))


@cache
def _sources_hash() -> str:
    """One hash of everything a contract may import: ours and snekmate's sources."""
    import snekmate

    h = hashlib.sha256(f"{vyper.__version__} {EVM_VERSION}".encode())
    for root in (CONTRACTS, *map(Path, snekmate.__path__)):  # a namespace package
        for path in sorted(root.rglob("*.vy*")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


@cache
def compile_contract(path: Path) -> tuple[list[dict], bytes]:
    """(ABI, deployment bytecode) of a deployable, from the disk cache when the sources
    have not changed."""
    path = Path(path).resolve()
    key = CACHE / f"{path.stem}-{_sources_hash()}.json"
    if key.exists():
        art = json.loads(key.read_text())
        return art["abi"], bytes.fromhex(art["bytecode"])
    file_input = FileInput(contents=path.read_text(), source_id=-1, path=path, resolved_path=path)
    out = compile_from_file_input(
        file_input,
        input_bundle=FilesystemInputBundle(list(_search_paths())),
        settings=Settings(evm_version=EVM_VERSION),
        output_formats=["abi", "bytecode"],
    )
    bytecode = out["bytecode"].removeprefix("0x")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = key.with_suffix(".tmp")
    tmp.write_text(json.dumps({"abi": out["abi"], "bytecode": bytecode}))
    tmp.replace(key)  # atomic: parallel workers may write the same entry
    return out["abi"], bytes.fromhex(bytecode)


# ------------------------------------------------------------------ ABI


def _type(param: dict) -> str:
    """The canonical ABI type of a parameter (tuples spelled out)."""
    t = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in param["components"]) + ")" + t[5:]
    return t


@cache
def _checksum(address: str) -> str:
    return to_checksum_address(address)


@cache
def _struct(name: str, fields: tuple[str, ...]):
    return namedtuple(name, fields)


def _shape(param: dict, value: Any) -> Any:
    """eth_abi's decoded value as titanoboa returns it: checksummed addresses, structs as
    named tuples (by field name and by position), arrays as lists."""
    t = param["type"]
    if t.endswith("]"):
        inner = dict(param, type=t[: t.rindex("[")])
        return [_shape(inner, v) for v in value]
    if t == "tuple":
        comps = param["components"]
        values = [_shape(c, v) for c, v in zip(comps, value, strict=True)]
        names = tuple(c["name"] for c in comps)
        if all(names):
            name = param.get("internalType", "struct").split()[-1].split(".")[-1]
            return _struct(re.sub(r"\W", "_", name) or "Struct", names)(*values)
        return tuple(values)
    if t == "address":
        return _checksum(value)
    return value


_ARG_WORD = re.compile(r"u?int\d+|bool|address")


def _word(value: Any) -> bytes:
    if isinstance(value, str):  # an address (its checksum is not validated)
        return int(value, 16).to_bytes(32, "big")
    return (int(value) % 2**256).to_bytes(32, "big")  # two's complement


def _encoder(types: list[str]):
    """One encoder per signature, built once (eth_abi's `encode` rebuilds it per call);
    arguments of one word each, and dynamic arrays of them (`healths(uint256[])`, called
    on every re-read), are encoded by hand."""
    dynamic = [t.endswith("[]") and bool(_ARG_WORD.fullmatch(t[:-2])) for t in types]
    if not all(d or _ARG_WORD.fullmatch(t) for t, d in zip(types, dynamic, strict=True)):
        return TupleEncoder(encoders=[registry.get_encoder(t) for t in types])
    if not any(dynamic):
        return lambda args: b"".join(map(_word, args))

    def encode(args) -> bytes:
        head, tail = [], []
        offset = 32 * len(args)  # the first tail starts after the head's words
        for is_array, value in zip(dynamic, args, strict=True):
            if not is_array:
                head.append(_word(value))
                continue
            head.append(offset.to_bytes(32, "big"))
            tail.append(len(value).to_bytes(32, "big") + b"".join(map(_word, value)))
            offset += len(tail[-1])
        return b"".join(head + tail)

    return encode


def _static(param: dict):
    """(size in words, reader(raw, offset)) of a static ABI type made of words, static
    tuples and fixed arrays, decoded as titanoboa returns it; None for anything else."""
    t = param["type"]
    if t.endswith("]"):
        inner_t, n = t[: t.rindex("[")], t[t.rindex("[") + 1 : -1]
        inner = _static(dict(param, type=inner_t)) if n else None
        if inner is None:
            return None
        (size, read), count = inner, int(n)
        return size * count, lambda raw, at: [read(raw, at + i * size * 32) for i in range(count)]
    if t == "tuple":
        parts = [_static(c) for c in param["components"]]
        if any(p is None for p in parts):
            return None
        names = tuple(c["name"] for c in param["components"])
        name = param.get("internalType", "struct").split()[-1].split(".")[-1]
        make = _struct(re.sub(r"\W", "_", name) or "Struct", names) if all(names) else None
        fields = []  # (byte offset in the tuple, reader)
        total = 0
        for size, read in parts:
            fields.append((total * 32, read))
            total += size

        def read_tuple(raw: bytes, at: int):
            values = [read(raw, at + off) for off, read in fields]
            return make(*values) if make else tuple(values)

        return total, read_tuple
    if t == "address":
        return 1, lambda raw, at: _checksum("0x" + raw[at + 12 : at + 32].hex())
    if t == "bool":
        return 1, lambda raw, at: raw[at + 31] != 0
    if re.fullmatch(r"uint\d+", t):
        return 1, lambda raw, at: int.from_bytes(raw[at : at + 32], "big")
    if re.fullmatch(r"int\d+", t):
        return 1, lambda raw, at: int.from_bytes(raw[at : at + 32], "big", signed=True)
    return None


def _decoder(outputs: list[dict]):
    """One decoder per signature, built once. Outputs made of words, static tuples, fixed
    arrays and top-level dynamic arrays of those are read by hand (eth_abi spends ten times
    the EVM's time on them); anything else goes through eth_abi and is shaped after."""
    readers = []
    for param in outputs:
        static = _static(param)
        if static is not None:
            readers.append((False, static))
            continue
        inner = _static(dict(param, type=param["type"][:-2]))
        if not param["type"].endswith("[]") or inner is None:
            types = [_type(p) for p in outputs]
            decoder = TupleDecoder(decoders=[registry.get_decoder(t, strict=True) for t in types])
            return lambda raw: [
                _shape(p, v)
                for p, v in zip(outputs, decoder(ContextFramesBytesIO(raw)), strict=True)
            ]
        readers.append((True, inner))

    def decode(raw: bytes) -> list:
        out, head = [], 0
        for dynamic, (size, read) in readers:
            if dynamic:
                at = int.from_bytes(raw[head : head + 32], "big")
                n = int.from_bytes(raw[at : at + 32], "big")
                out.append([read(raw, at + 32 + i * size * 32) for i in range(n)])
                head += 32
            else:
                out.append(read(raw, head))
                head += size * 32
        return out

    return decode


class Function:
    """One external function of a deployed contract: call it with its arguments and, for a
    transaction, `sender=`."""

    def __init__(self, contract: Contract, entries: list[dict]) -> None:
        self.contract = contract
        # Vyper emits one ABI entry per count of default arguments.
        self.by_arity = {}
        for entry in entries:
            types = [_type(p) for p in entry["inputs"]]
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            view = entry.get("stateMutability") in ("view", "pure")
            decode = _decoder(entry["outputs"]) if entry["outputs"] else None
            self.by_arity[len(types)] = (selector, _encoder(types), decode, view)

    def prepare_calldata(self, *args: Any) -> bytes:
        selector, encode, *_ = self.by_arity[len(args)]
        return selector + encode(args)

    def __call__(self, *args: Any, sender: str | None = None) -> Any:
        selector, encode, decode, view = self.by_arity[len(args)]
        raw = self.contract.env.call(self.contract.address, selector + encode(args), sender, view)
        if decode is None:
            return None
        values = decode(raw)
        return values[0] if len(values) == 1 else tuple(values)


class Contract:
    """A deployed contract: its ABI functions as attributes."""

    def __init__(self, env: RevmEnv, address: str, abi: list[dict], name: str) -> None:
        self.env = env
        self.address = to_checksum_address(address)
        self._name = name
        entries: dict[str, list[dict]] = {}
        for item in abi:
            if item.get("type") == "function":
                entries.setdefault(item["name"], []).append(item)
        for fn_name, items in entries.items():
            setattr(self, fn_name, Function(self, items))

    def __repr__(self) -> str:
        return f"<{self._name} at {self.address}>"


# ------------------------------------------------------------------ the chain


class RevmEnv:
    """One in-process chain: deployments, calls, snapshots and the block clock."""

    Error = Revert

    def __init__(self, timestamp: int = 1_700_000_000, chain_id: int = 1) -> None:
        from pyrevm import CfgEnv

        self.evm = EVM(
            env=Env(
                cfg=CfgEnv(chain_id=chain_id),
                block=BlockEnv(number=1, timestamp=timestamp, gas_limit=GAS),
            ),
            spec_id=EVM_VERSION.upper(),
            gas_limit=GAS,
        )
        self.eoa = DEPLOYER

    # -- deployment

    def load(self, path: str | Path, *args: Any, sender: str | None = None) -> Contract:
        """Compile (or read from the cache) and deploy `path` with constructor `args`."""
        abi, bytecode = compile_contract(Path(path))
        ctor = next((x for x in abi if x.get("type") == "constructor"), None)
        if ctor is not None:
            bytecode += abi_encode([_type(p) for p in ctor["inputs"]], args)
        try:
            address = self.evm.deploy(sender or self.eoa, bytecode, gas=GAS)
        except RuntimeError as err:
            raise _error(err) from err
        return Contract(self, address, abi, Path(path).stem)

    def at(self, path: str | Path, address: str) -> Contract:
        """`path`'s ABI at an existing address (a module's setters behind a delegatecall)."""
        abi, _ = compile_contract(Path(path))
        return Contract(self, address, abi, Path(path).stem)

    # -- calls

    def call(self, to: str, data: bytes, sender: str | None = None, static: bool = False) -> bytes:
        """A transaction (or a static call for a view) from `sender`; raises `Revert`."""
        try:
            return bytes(
                self.evm.message_call(
                    caller=sender or self.eoa, to=to, calldata=data, gas=GAS, is_static=static
                )
            )
        except RuntimeError as err:
            raise _error(err) from err

    # -- state

    @contextmanager
    def anchor(self) -> Iterator[None]:
        """Everything inside (state and clock) is rolled back on exit."""
        checkpoint = self.evm.snapshot()
        timestamp, number = self.timestamp, self.evm.env.block.number
        try:
            yield
        finally:
            self.evm.revert(checkpoint)
            self._set_block(timestamp, number)

    @contextmanager
    def prank(self, address: str) -> Iterator[None]:
        """Transactions inside may come from `address` (`sender=`) though it holds code,
        which revm refuses (EIP-3607): its code is set aside meanwhile, so nothing inside
        may call into it."""
        from pyrevm import AccountInfo

        info, code = self.evm.basic(address), self.evm.get_code(address)
        self.evm.insert_account_info(address, AccountInfo(balance=info.balance, nonce=info.nonce))
        try:
            yield
        finally:
            self.evm.insert_account_info(
                address, AccountInfo(balance=info.balance, nonce=info.nonce, code=code)
            )

    @property
    def timestamp(self) -> int:
        return self.evm.env.block.timestamp

    @timestamp.setter
    def timestamp(self, value: int) -> None:
        self._set_block(value, self.evm.env.block.number)

    def time_travel(self, seconds: int) -> None:
        """Move the clock forward (one block per 12 seconds)."""
        block = self.evm.env.block
        self._set_block(block.timestamp + seconds, block.number + max(seconds // 12, 1))

    def _set_block(self, timestamp: int, number: int) -> None:
        self.evm.set_block_env(BlockEnv(number=number, timestamp=timestamp, gas_limit=GAS))
