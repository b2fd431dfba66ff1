"""How the web layer is put together: one explicit route and action table, no import cycles,
no registration by import side effects, no reaching into the daemon but through the
control plane, callback shapes looked up beside their dialects."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from import_graph import PACKAGE, cycles, graph, modules

ROOT = PACKAGE.parent
WIRING = ("appliance.web", "appliance.control", "appliance.notify", "appliance.daemon",
          "appliance.provider.report_route", "appliance.integrations.hooks")


def _wiring(name: str) -> bool:
    return any(name == w or name.startswith(w + ".") for w in WIRING)


def test_no_import_cycle_touches_the_web_layer_or_the_control_plane():
    found = [group for group in cycles(graph()) if any(_wiring(m) for m in group)]
    assert found == []


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}
    assert cycles(edges) == [["a.x", "a.y", "a.z"]]


def test_every_web_module_imports_alone_in_a_fresh_interpreter():
    """Each module first, with nothing of the package loaded before it: an import-order
    cycle would fail here with a partially initialised module."""
    names = sorted(n for n in modules() if _wiring(n))
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'appliance' or"
        " m.startswith('appliance.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "print('\\n'.join(failed))\n")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""


def _imported_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("appliance"):
            names |= {a.asname or a.name for a in node.names}
    return names


def _registrations(path: Path) -> list[str]:
    """Module-level statements that change another module's state: `NAME[...] = ...` or a
    decorator call on a name imported from the package."""
    tree = ast.parse(path.read_text())
    imported = _imported_names(tree)
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                        and target.value.id in imported:
                    found.append(f"line {node.lineno}: {target.value.id}[...] = ...")
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for deco in node.decorator_list:
                fn = deco.func if isinstance(deco, ast.Call) else deco
                if isinstance(fn, ast.Name) and fn.id in imported:
                    found.append(f"line {node.lineno}: @{fn.id}")
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and isinstance(node.value.func, (ast.Name, ast.Attribute)):
            fn = node.value.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr
            if name.startswith("register"):
                found.append(f"line {node.lineno}: {name}(...)")
    return found


def test_no_module_registers_anything_when_imported():
    found = {name: regs for name, path in modules().items() if (regs := _registrations(path))}
    assert found == {}


def test_the_registration_finder_finds_the_old_hooks(tmp_path):
    old = ("from appliance.web.app import ROUTE_HOOKS\n"
           "from appliance.web.ozeki import action\n"
           "@action('x')\ndef x(ctx):\n    pass\n"
           "ROUTE_HOOKS['admin'] = x\n")
    path = tmp_path / "old_style.py"
    path.write_text(old)
    assert _registrations(path) == ["line 4: @action", "line 6: ROUTE_HOOKS[...] = ..."]


def test_the_web_layer_does_not_hold_the_daemon():
    """Handlers reach the daemon only through `services.control` (control.py)."""
    offenders = []
    for name, path in modules().items():
        if name.startswith("appliance.web") or name.startswith("appliance.integrations") \
                or name.startswith("appliance.provider"):
            text = path.read_text()
            if "extras" in text or 'get("daemon")' in text or "import Daemon" in text:
                offenders.append(name)
    assert offenders == []


def test_every_ozeki_action_is_in_the_one_table_and_documented():
    from appliance.web import drivers, ozeki, ozeki_actions
    from appliance.web.routes import OZEKI_ACTIONS
    docs = (ROOT / "docs" / "api.md").read_text()
    undocumented = [name for name in OZEKI_ACTIONS if f"`{name}`" not in docs]
    assert undocumented == []
    served = {a.fn for a in OZEKI_ACTIONS.values()}
    # an action named like a function of the action modules is that very function
    for module in (ozeki_actions, drivers):
        for name, fn in vars(module).items():
            if name in OZEKI_ACTIONS:
                assert OZEKI_ACTIONS[name].fn is fn and fn in served, name
    assert OZEKI_ACTIONS["sendmessage"].fn is ozeki.sendmessage
    admin_free = sorted(n for n, a in OZEKI_ACTIONS.items() if not a.admin_only)
    assert admin_free == sorted([
        "sendmessage", "getmessagebyid", "receivemessage", "querymessagelist",
        "deletemessagelist", "deletefolderitems", "markmessagebyid", "deletemessagebyid",
        "getcredits", "getaddressbook", "addcontact", "deletecontact"])


def test_the_app_serves_exactly_the_route_table(tmp_path):
    from appliance import config as cfg
    from appliance.web.app import make_app
    from appliance.web.services import Services
    config = cfg.Config(store=cfg.StoreConfig(state_dir=str(tmp_path)))
    app = make_app(Services(config=config, journal=None, accounts=None))
    served = sorted({(r.method, r.rule) for r in app.routes})
    assert ("GET", "/api") in served and ("POST", "/api") in served
    assert ("GET", "/") in served and ("POST", "/bulksms/bulksms") in served
    assert ("GET", "/connections/<name>/report") in served
    assert ("POST", "/hooks/grafana") in served and ("GET", "/admin/ussd") in served
    # `/` is added once: by the dashboard, which hands Phone System requests on
    assert sum(1 for r in app.routes if r.rule == "/" and r.method == "GET") == 1


@pytest.mark.parametrize("kind", ["ozeki_reporturl", "phonesystem_dlr", "bulksms_dlr"])
def test_each_callback_kind_is_rendered_by_its_dialects_module(kind):
    from appliance.web import callbacks
    fn = callbacks.DELIVERY_REPORTS[kind]
    assert fn.__module__ == f"appliance.web.{kind.split('_')[0]}_callbacks"


def test_the_notifier_names_no_dialect():
    text = (PACKAGE / "notify.py").read_text()
    for word in ("ozeki", "phonesystem", "bulksms", "NotificationName", "$"):
        assert word not in text.split('"""', 2)[2], word


def test_the_latency_plugin_names_each_routes_dialect_as_dialect_of_does(tmp_path):
    """The plugin reads a static route's rule once; it must name the same dialect as
    dialect_of reading each request (the /metrics labels)."""
    import bottle

    from appliance import config as cfg
    from appliance.web import metrics
    from appliance.web.app import make_app
    from appliance.web.services import Services
    config = cfg.Config(store=cfg.StoreConfig(state_dir=str(tmp_path)))
    app = make_app(Services(config=config, journal=None, accounts=None))
    variants = [("GET", "", ""), ("POST", "", "application/json"), ("GET", "a=1", "text/plain"),
                ("POST", "x=y", "application/x-www-form-urlencoded"), ("GET", "", "JSON")]
    checked = 0
    for route in app.routes:
        if "<" in route.rule:
            continue
        for method, query, kind in variants:
            request = bottle.BaseRequest({"REQUEST_METHOD": method, "PATH_INFO": route.rule,
                                          "QUERY_STRING": query, "CONTENT_TYPE": kind})
            assert metrics._route_dialect(route.rule)(request) == metrics.dialect_of(request), \
                (route.rule, method, query, kind)
            checked += 1
    assert checked > 40
    assert metrics._route_dialect("/connections/<name>/report") is metrics.dialect_of
