"""`make abi`: the integration kit's generated files, from the contracts' sources.

    python integration/make_abi.py            # write integration/abi, solidity, eip712.json
    python integration/make_abi.py --check    # exit 1 if a committed file is out of date

Everything is derived from the compiled ABIs (`vyper -f combined_json`, see vyper_build.py):

- ``abi/<Deployable>.json``: each deployable's ABI. ``MarginEngine.json`` is the engine's
  ABI merged with MarginConfig's and FundingConfig's functions and events, because the engine
  runs MarginConfig by delegatecall from its fallback, and MarginConfig FundingConfig from
  its own: one address answers all three, and the setters' events are logged by the
  engine's address. ``abi/devnet/``: the mock token and feed of local deploys.
- ``solidity/I<Deployable>.sol``: Solidity interfaces with their structs. Vyper ABIs carry no
  ``internalType``, so a tuple's struct name is found by its field names among the
  ``struct`` definitions of ``contracts/`` (an unknown or ambiguous tuple is an error).
- ``eip712.json``: every signed message (a ``*_TYPEHASH`` constant in a deployable): its
  EIP-712 type string built from the ABI of the struct the contract hashes, checked
  against the constant's string in the source, its type hash, the domain's name and version
  from the source, and the ``types`` object for ``eth_signTypedData_v4`` /
  ``cast wallet sign --data``.

Standard library and `vyper` only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vyper_build import DEPLOYABLES, MOCKS, ROOT, compile_contracts, source_path

OUT = ROOT / "integration"
ENGINE, CONFIG, FUNDING = "MarginEngine", "MarginConfig", "FundingConfig"
DOMAIN_FIELDS = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)
# Names Solidity reserves that a Vyper parameter may use: suffixed with "_".
SOLIDITY_RESERVED = frozenset(
    "address after alias anonymous apply assembly auto bool break byte bytes calldata case "
    "catch constant constructor continue contract copyof days default define delete do else "
    "emit enum error ether event external fallback false final for from function gwei hours "
    "if immutable implements in indexed inline interface internal is let library macro "
    "mapping match memory minutes modifier mutable new null of override partial payable "
    "pragma private promise public pure receive reference relocatable return returns revert "
    "sealed seconds sizeof static storage string struct super supports switch this true try "
    "type typedef typeof unchecked unicode using var view virtual weeks wei while years".split()
)


def keccak256(data: bytes) -> bytes:
    from vyper.utils import keccak256 as _keccak

    return _keccak(data)


# ---- structs: names from the sources, types from the ABI ------------------------------


def source_structs() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """file stem -> [(struct name, field names)] for every struct in contracts/."""
    out: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for path in sorted((ROOT / "contracts").rglob("*.vy*")):
        current: list[str] | None = None
        for line in [*path.read_text().splitlines(), ""]:
            head = re.match(r"struct (\w+):", line)
            if head:
                current = []
                out.setdefault(path.stem, []).append((head.group(1), current))
            elif current is not None:
                body = line.split("#")[0].strip()
                field = re.match(r"(\w+)\s*:", body)
                if line[:1] in (" ", "\t") and body:
                    if field:  # a field; other indented lines continue a wrapped type
                        current.append(field.group(1))
                elif line.strip() and not line.lstrip().startswith("#"):
                    current = None
                elif not line.strip() and current:
                    current = None
    return {k: [(n, tuple(f)) for n, f in v] for k, v in out.items()}


def struct_name(component: dict, contract: str, structs: dict) -> str:
    """The Vyper struct whose fields a tuple ABI entry has (the contract's own first)."""
    fields = tuple(c["name"] for c in component["components"])
    own = [name for name, f in structs.get(contract, []) if f == fields]
    if len(own) == 1:
        return own[0]
    found = sorted({name for defs in structs.values() for name, f in defs if f == fields})
    if len(found) != 1:
        raise ValueError(
            f"{contract}: tuple ({', '.join(fields)}) matches structs {found or 'none'}: "
            "name it uniquely in contracts/"
        )
    return found[0]


def collect_structs(abi: list[dict], contract: str, structs: dict) -> dict[str, list[dict]]:
    """struct name -> components, for every tuple in ``abi`` (nested ones first)."""
    found: dict[str, list[dict]] = {}

    def visit(entry: dict) -> None:
        if entry["type"].startswith("tuple"):
            for c in entry["components"]:
                visit(c)
            name = struct_name(entry, contract, structs)
            if found.setdefault(name, entry["components"]) != entry["components"]:
                raise ValueError(f"{contract}: struct {name} appears with two layouts")

    for item in abi:
        for entry in item.get("inputs", []) + item.get("outputs", []):
            visit(entry)
    return found


def canonical(entry: dict) -> str:
    if entry["type"].startswith("tuple"):
        inner = ",".join(canonical(c) for c in entry["components"])
        return f"({inner}){entry['type'][5:]}"
    return entry["type"]


def signature(item: dict) -> str:
    return f"{item['name']}({','.join(canonical(i) for i in item['inputs'])})"


# ---- ABIs -------------------------------------------------------------------------------


def merged_engine_abi(engine: list[dict], config: list[dict]) -> list[dict]:
    """The engine's ABI plus MarginConfig's functions (run by the fallback) and events
    (logged by the engine's address when a setter runs)."""
    names = {i["name"] for i in engine if i["type"] == "function"}
    events = {signature(i) for i in engine if i["type"] == "event"}
    extra = [
        i
        for i in config
        if (i["type"] == "function" and i["name"] not in names)
        or (i["type"] == "event" and signature(i) not in events)
    ]
    return [*engine, *extra]


def abis(compiled: dict) -> dict[str, list[dict]]:
    out = {name: compiled[name]["abi"] for name in DEPLOYABLES}
    out[ENGINE] = merged_engine_abi(
        merged_engine_abi(compiled[ENGINE]["abi"], compiled[CONFIG]["abi"]),
        compiled[FUNDING]["abi"],
    )
    return out


# ---- Solidity interfaces --------------------------------------------------------------


def _ident(name: str) -> str:
    return f"{name}_" if name in SOLIDITY_RESERVED else name


def _sol_type(entry: dict, contract: str, structs: dict) -> str:
    if entry["type"].startswith("tuple"):
        return struct_name(entry, contract, structs) + entry["type"][5:]
    return entry["type"]


def _located(entry: dict, contract: str, structs: dict, location: str) -> str:
    t = _sol_type(entry, contract, structs)
    if entry["type"] in ("string", "bytes") or "[" in t or entry["type"].startswith("tuple"):
        t += f" {location}"
    return t


def _params(entries: list[dict], contract: str, structs: dict, location: str) -> str:
    parts = []
    for e in entries:
        name = _ident(e["name"])
        parts.append(_located(e, contract, structs, location) + (f" {name}" if name else ""))
    return ", ".join(parts)


def _notice(doc: dict, sig: str) -> list[str]:
    text = doc.get("methods", {}).get(sig, {}).get("notice")
    if not text:
        return []
    return ["    /// @notice " + " ".join(text.split())]


def solidity_interface(
    name: str, abi: list[dict], source: str, version: str, userdoc: dict, structs: dict
) -> str:
    contract = name if name != ENGINE else ENGINE
    lookup = dict(structs)
    if name == ENGINE:  # the merged ABI: MarginConfig's structs are the engine's too
        lookup[ENGINE] = (
            structs.get(ENGINE, []) + structs.get(CONFIG, []) + structs.get(FUNDING, [])
        )
    lines = [
        "// SPDX-License-Identifier: UNLICENSED",
        f"// Generated by `make abi` from {source} (vyper {version}); do not edit.",
        "pragma solidity ^0.8.0;",
        "",
    ]
    ctor = next((i for i in abi if i["type"] == "constructor"), None)
    if ctor is not None:
        args = ", ".join(f"{_sol_type(i, contract, lookup)} {i['name']}" for i in ctor["inputs"])
        lines.append(f"/// Deployed as `{name}({args})`.")
    if name == ENGINE:
        lines += [
            "/// The engine's fallback runs MarginConfig by delegatecall, whose fallback runs",
            "/// FundingConfig: the owner setters, the funding functions and their events",
            "/// below belong to this address too.",
        ]
    lines.append(f"interface I{name} {{")
    for sname, comps in collect_structs(abi, contract, lookup).items():
        lines.append(f"    struct {sname} {{")
        for c in comps:
            lines.append(f"        {_sol_type(c, contract, lookup)} {_ident(c['name'])};")
        lines += ["    }", ""]
    for item in abi:
        if item["type"] != "event":
            continue
        params = []
        for e in item["inputs"]:
            t = _sol_type(e, contract, lookup)
            params.append(t + (" indexed" if e.get("indexed") else "") + f" {_ident(e['name'])}")
        anon = " anonymous" if item.get("anonymous") else ""
        lines.append(f"    event {item['name']}({', '.join(params)}){anon};")
    lines.append("")
    for item in abi:
        if item["type"] != "function":
            continue
        mut = item.get("stateMutability", "nonpayable")
        mut = "" if mut == "nonpayable" else f" {mut}"
        returns = ""
        if item.get("outputs"):
            returns = f" returns ({_params(item['outputs'], contract, lookup, 'memory')})"
        lines += _notice(userdoc, signature(item))
        lines.append(
            f"    function {item['name']}"
            f"({_params(item['inputs'], contract, lookup, 'calldata')}) external{mut}{returns};"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---- EIP-712 --------------------------------------------------------------------------


def _encode_type(primary: str, types: dict[str, list[dict]]) -> str:
    """EIP-712 encodeType: the primary type, then referenced struct types sorted by name."""

    def refs(name: str, seen: set[str]) -> set[str]:
        for f in types[name]:
            base = f["type"].split("[")[0]
            if base in types and base not in seen:
                seen.add(base)
                refs(base, seen)
        return seen

    def one(name: str) -> str:
        fields = ",".join(f"{f['type']} {f['name']}" for f in types[name])
        return f"{name}({fields})"

    return one(primary) + "".join(one(r) for r in sorted(refs(primary, set()) - {primary}))


def _typed_fields(components: list[dict], contract: str, structs: dict, types: dict) -> list:
    fields = []
    for c in components:
        t = c["type"]
        if t.startswith("tuple"):
            sname = struct_name(c, contract, structs)
            types[sname] = _typed_fields(c["components"], contract, structs, types)
            t = sname + t[5:]
        fields.append({"name": c["name"], "type": t})
    return fields


def eip712(compiled: dict, structs: dict) -> dict:
    domain_type = "EIP712Domain(" + ",".join(f"{t} {n}" for n, t in DOMAIN_FIELDS) + ")"
    out: dict = {
        "EIP712Domain": {
            "type": domain_type,
            "typehash": "0x" + keccak256(domain_type.encode()).hex(),
            "fields": [{"name": n, "type": t} for n, t in DOMAIN_FIELDS],
        },
        "messages": {},
    }
    const = re.compile(r'^(\w+_TYPEHASH): constant\(bytes32\) = keccak256\(\s*"([^"]+)"\s*\)', re.M)
    domain = re.compile(r'eip712\.__init__\(\s*"([^"]*)",\s*"([^"]*)"\s*\)')
    for name in DEPLOYABLES:
        source = (ROOT / source_path(name)).read_text()
        for m in const.finditer(source):
            declared = m.group(2)
            primary = declared.split("(")[0]
            d = domain.search(source)
            if d is None:
                raise ValueError(f"{name}: {m.group(1)} but no eip712.__init__(name, version)")
            entry = _message_entry(compiled[name]["abi"], name, primary, structs)
            if entry["type"] != declared:
                raise ValueError(
                    f"{name}: {m.group(1)} hashes {declared!r} but the {primary} struct "
                    f"encodes as {entry['type']!r}"
                )
            out["messages"][primary] = {
                "contract": name,
                "domain": {"name": d.group(1), "version": d.group(2)},
                "primaryType": primary,
                **entry,
                "typehash": "0x" + keccak256(declared.encode()).hex(),
            }
    return out


def _message_entry(abi: list[dict], contract: str, primary: str, structs: dict) -> dict:
    """The message's type string and `types`, from the first function taking the struct;
    ``digest_view``: the view that returns its EIP-712 digest, if the contract has one."""
    takes = [
        (item, e)
        for item in abi
        if item["type"] == "function"
        for e in item["inputs"]
        if e["type"] == "tuple" and struct_name(e, contract, structs) == primary
    ]
    if not takes:
        raise ValueError(f"{contract}: no function takes the {primary} struct")
    _, entry = takes[0]
    types: dict[str, list] = {}
    types[primary] = _typed_fields(entry["components"], contract, structs, types)
    views = [
        item["name"]
        for item, _ in takes
        if item.get("stateMutability") == "view"
        and [o["type"] for o in item.get("outputs", [])] == ["bytes32"]
        and len(item["inputs"]) == 1
    ]
    return {
        "type": _encode_type(primary, types),
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in DOMAIN_FIELDS],
            **{k: types[k] for k in sorted(types, key=lambda k: k != primary)},
        },
        "digest_view": views[0] if views else None,
    }


# ---- files ----------------------------------------------------------------------------


def render(compiled: dict | None = None) -> dict[str, str]:
    """relative path (under integration/) -> file content."""
    compiled = compiled or compile_contracts()
    version = compiled["version"]
    structs = source_structs()
    files: dict[str, str] = {}
    for name, abi in abis(compiled).items():
        files[f"abi/{name}.json"] = json.dumps(abi, indent=2) + "\n"
        if name in (CONFIG, FUNDING):
            continue  # its functions are in IMarginEngine: call them at the engine
        userdoc = compiled[name].get("userdoc", {})
        if name == ENGINE:
            userdoc = {
                "methods": {
                    **compiled[FUNDING].get("userdoc", {}).get("methods", {}),
                    **compiled[CONFIG].get("userdoc", {}).get("methods", {}),
                    **userdoc.get("methods", {}),
                }
            }
        files[f"solidity/I{name}.sol"] = solidity_interface(
            name, abi, str(source_path(name)), version, userdoc, structs
        )
    for name in MOCKS:
        files[f"abi/devnet/{name}.json"] = json.dumps(compiled[name]["abi"], indent=2) + "\n"
    typed = {"compiler": f"vyper {version}", **eip712(compiled, structs)}
    files["eip712.json"] = json.dumps(typed, indent=2) + "\n"
    return files


GENERATED = ("abi", "solidity", "eip712.json")


def stale(files: dict[str, str], out: Path = OUT) -> list[str]:
    """Committed files that differ from ``files`` (or are missing, or left over)."""
    on_disk = {
        str(p.relative_to(out))
        for g in GENERATED
        for p in ([out / g] if (out / g).is_file() else (out / g).rglob("*"))
        if p.is_file()
    }
    problems = [f"{p}: not generated any more" for p in sorted(on_disk - set(files))]
    for rel, text in files.items():
        path = out / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.read_text() != text:
            problems.append(f"{rel}: out of date")
    return problems


def write(files: dict[str, str], out: Path = OUT) -> None:
    for rel in stale(files, out):
        if rel.endswith("not generated any more"):
            (out / rel.split(":")[0]).unlink()
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    files = render()
    if args.check:
        problems = stale(files)
        for p in problems:
            print(f"integration/{p}", file=sys.stderr)
        if problems:
            print("run `make abi` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    write(files)
    print(f"wrote {len(files)} files under {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
