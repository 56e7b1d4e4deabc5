"""Regenerate slob/trace/protobuf_table.py from the installed ibapi (see that module)."""
import ast, pathlib, ibapi
P = pathlib.Path(ibapi.__file__).parent
from ibapi.message import IN, OUT
def fn_proto_class(tree):
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            out[node.name] = node
    return out
# decoder
src = (P/"decoder.py").read_text(); tree = ast.parse(src)
fns = fn_proto_class(tree)
imports = {}
for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ibapi.protobuf."):
        for a in node.names: imports[a.asname or a.name] = (node.module.split(".")[-1], a.name)
inmap = {}
for node in ast.walk(tree):
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "msgId2handleInfoProtoBuf" for t in node.targets):
        for k, v in zip(node.value.keys, node.value.values):
            msgname = k.attr; proc = v.keywords[0].value.id
            f = fns[proc]
            cls = None
            for n in ast.walk(f):
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in imports:
                    cls = imports[n.func.id]; break
            inmap[int(getattr(IN, msgname))] = (msgname, cls)
src = (P/"client.py").read_text(); tree = ast.parse(src)
imports = {}
for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ibapi.protobuf."):
        for a in node.names: imports[a.asname or a.name] = (node.module.split(".")[-1], a.name)
outmap = {}
for node in ast.walk(tree):
    if isinstance(node, ast.FunctionDef) and node.name.endswith("ProtoBuf") and len(node.args.args) == 2:
        ann = node.args.args[1].annotation
        if not isinstance(ann, ast.Name) or ann.id not in imports: continue
        for n in ast.walk(node):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "sendMsgProtoBuf":
                a0 = n.args[0]
                # OUT.X + PROTOBUF_MSG_ID
                if isinstance(a0, ast.BinOp) and isinstance(a0.left, ast.Attribute):
                    outmap[int(getattr(OUT, a0.left.attr))] = (a0.left.attr, imports[ann.id])





def emit(name, m):
    lines = [f"{name}: dict[int, str] = {{"]
    for k in sorted(m):
        lines.append(f'    {k}: "{m[k][1][0]}.{m[k][1][1]}",  # {m[k][0]}')
    lines.append("}")
    return "\n".join(lines)
hdr = '''"""Which protobuf class of IB's client carries each message id (server version >= 201).

Generated from ibapi 10.50.2 by reading its own dispatch: ``Decoder.msgId2handleInfoProtoBuf``
(TWS -> client: the class each ``process...ProtoBuf`` handler parses) and the ``EClient``
methods ``...ProtoBuf(self, request: <Class>)`` that send ``OUT.<id> + PROTOBUF_MSG_ID``
(client -> TWS). Values are ``<module under ibapi.protobuf>.<class>``. Regenerate with
``python tools/gen_protobuf_table.py`` after changing the ibapi pin.
"""

from __future__ import annotations

__all__ = ["INCOMING", "OUTGOING"]

'''
(pathlib.Path(__file__).resolve().parents[1] / "slob" / "trace" / "protobuf_table.py").write_text(hdr + "#: TWS -> client (ibapi.message.IN)\n" + emit("INCOMING", inmap) + "\n\n#: client -> TWS (ibapi.message.OUT)\n" + emit("OUTGOING", outmap) + "\n")
