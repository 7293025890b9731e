"""Content rules: what a diff adds that runs processes or code, unpickles or connects is high risk.

Each hostile case is a trick an author who read the analyser would try (aliases, star imports,
computed names, the builtins, frames); each honest case is work the gates must not block.
"""

from __future__ import annotations

import json

import pytest
from triloop.governance.content_ast import Unparsable, uses
from triloop.governance.content_risk import content_risks, kind

PROCESS, DYNAMIC, DESER, NET = "process execution", "dynamic code", "deserialisation", "network"

HOSTILE = [
    # (id, added module text, category, fragment of the reason)
    ("os.system", "import os\nos.system('id')\n", PROCESS, "x.py:2 (os.system)"),
    ("from-import alias", "from os import system as s\ns('id')\n", PROCESS, "s -> os.system"),
    ("module alias", "import os as o\no.popen('id')\n", PROCESS, "o.popen -> os.popen"),
    ("subprocess alias", "import subprocess as sp\nsp.run(['id'])\n", PROCESS, "sp.run"),
    ("from subprocess", "from subprocess import Popen as P\nP(['id'])\n", PROCESS, "Popen"),
    ("os.exec*", "import os\nos.execvp('sh', ['sh'])\n", PROCESS, "os.execvp"),
    ("posix", "import posix\nposix.system('id')\n", PROCESS, "posix.system"),
    ("pty", "import pty\npty.spawn('/bin/sh')\n", PROCESS, "pty.spawn"),
    ("asyncio", "import asyncio\nasyncio.create_subprocess_shell('id')\n", PROCESS, "asyncio"),
    (
        "loop method",
        "async def f(loop):\n    await loop.subprocess_shell(p, 'id')\n",
        PROCESS,
        "loop.subprocess_shell()",
    ),
    (
        "multiprocessing",
        "import multiprocessing as mp\nmp.Process(target=f)\n",
        PROCESS,
        "multiprocessing.Process",
    ),
    ("star import", "from os import *\nsystem('id')\n", PROCESS, "system -> os.system"),
    ("re-exported os", "import shutil\nshutil.os.system('id')\n", PROCESS, "shutil.os.system"),
    ("private re-export", "import tempfile as t\nt._os.popen('id')\n", PROCESS, "t._os.popen"),
    ("os.path.os", "from os import path\npath.os.system('id')\n", PROCESS, "path.os.system"),
    (
        "string annotation",
        "class M(Model):\n    x: \"__import__('os').system('id') or int\"\n",
        PROCESS,
        "x.py:2 (__import__('os').system -> os.system)",
    ),
    ("__loader__", "__loader__.load_module(name)\n", DYNAMIC, "(__loader__.load_module)"),
    ("assigned alias", "import os\nrun = os.system\nrun('id')\n", PROCESS, "x.py:2 (os.system)"),
    ("tuple alias", "import os\na, b = os, 1\na.system('id')\n", PROCESS, "a.system -> os.system"),
    ("walrus", "import os\n(r := os.system)('id')\n", PROCESS, "os.system"),
    ("lambda", "import os\nf = lambda: os.system('id')\n", PROCESS, "os.system"),
    (
        "default argument",
        "import subprocess\ndef f(run=subprocess.run):\n    run('id')\n",
        PROCESS,
        "subprocess.run",
    ),
    ("f-string", "import os\nx = f\"{os.popen('id').read()}\"\n", PROCESS, "os.popen"),
    (
        "__import__ concat",
        "__import__('o' + 's').system('id')\n",
        PROCESS,
        "__import__('o' + 's').system -> os.system",
    ),
    ("__import__ itself", "m = __import__(name)\n", DYNAMIC, "(__import__)"),
    (
        "getattr concat",
        "import os\ngetattr(os, 'sys' 'tem')('id')\n",
        PROCESS,
        "getattr(os, 'system') -> os.system",
    ),
    (
        "getattr computed",
        "import os\ngetattr(os, name)('id')\n",
        DYNAMIC,
        "getattr(os, <computed>)",
    ),
    ("getattr on anything", "getattr(obj, name)\n", DYNAMIC, "getattr(obj, <computed>)"),
    ("__getattribute__", "import os\nos.__getattribute__(n)('id')\n", DYNAMIC, "<computed>"),
    (
        "object.__getattribute__",
        "import os\nobject.__getattribute__(os, n)\n",
        DYNAMIC,
        "<computed>",
    ),
    (
        "attrgetter",
        "import operator, os\noperator.attrgetter('system')(os)('id')\n",
        DYNAMIC,
        "attrgetter",
    ),
    (
        "import_module",
        "import importlib\nimportlib.import_module('os').system('id')\n",
        PROCESS,
        "importlib.import_module('os').system -> os.system",
    ),
    (
        "import_module computed",
        "from importlib import import_module as im\nim(n)\n",
        DYNAMIC,
        "im -> importlib.import_module",
    ),
    ("eval", "eval(src)\n", DYNAMIC, "(eval)"),
    ("exec", "exec(src, {})\n", DYNAMIC, "(exec)"),
    ("compile", "code = compile(src, 'f', 'exec')\n", DYNAMIC, "(compile)"),
    ("builtins.exec", "import builtins\nbuiltins.exec(src)\n", DYNAMIC, "builtins.exec"),
    ("builtins aliased", "import builtins as b\nb.eval(src)\n", DYNAMIC, "b.eval -> eval"),
    ("__builtins__ subscript", "__builtins__['ev' + 'al'](src)\n", DYNAMIC, "__builtins__"),
    (
        "builtins assigned",
        "import builtins\nbuiltins.open = evil\n",
        DYNAMIC,
        "assigns builtins.open",
    ),
    ("builtins.__dict__", "import builtins\nbuiltins.__dict__[n](src)\n", DYNAMIC, "__dict__"),
    ("module as value", "import os\nhelper(os)\n", DYNAMIC, "module os used as a value"),
    ("module in a list", "import os\nmods = [os]\n", DYNAMIC, "module os used as a value"),
    (
        "module on self",
        "import os\nclass C:\n    def f(self):\n        self.m = os\n",
        DYNAMIC,
        "module os used as a value",
    ),
    ("subclasses", "().__class__.__bases__[0].__subclasses__()\n", DYNAMIC, "__subclasses__"),
    ("__globals__", "g = f.__globals__['os']\n", DYNAMIC, "__globals__"),
    ("frame", "import sys\nsys._getframe(1).f_globals\n", DYNAMIC, "sys._getframe"),
    (
        "sys.modules",
        "import sys\nsys.modules['os'].system('id')\n",
        PROCESS,
        "sys.modules['os'].system -> os.system",
    ),
    ("globals", "globals()['__builtins__']\n", DYNAMIC, "(globals)"),
    ("vars indexed", "vars()[name]\n", DYNAMIC, "vars() indexed"),
    ("runpy", "import runpy\nrunpy.run_path(p)\n", DYNAMIC, "runpy.run_path"),
    (
        "types.FunctionType",
        "import types\ntypes.FunctionType(c, {})()\n",
        DYNAMIC,
        "types.FunctionType",
    ),
    (
        "pkgutil.resolve_name",
        "import pkgutil\npkgutil.resolve_name('os:system')\n",
        DYNAMIC,
        "pkgutil.resolve_name",
    ),
    ("ctypes", "import ctypes\nctypes.CDLL(None).system(b'id')\n", DYNAMIC, "ctypes"),
    ("builtin default", "def f(eval=eval):\n    return eval('1')\n", DYNAMIC, "x.py:1 (eval)"),
    ("comprehension iterable", "[e for eval in [eval] for e in [eval]]\n", DYNAMIC, "(eval)"),
    ("module def does not hide it", "def eval(s):\n    pass\neval(s)\n", DYNAMIC, "(eval)"),
    ("pickle", "import pickle\npickle.loads(blob)\n", DESER, "pickle.loads"),
    (
        "pickle as json",
        "import pickle as json\njson.loads(blob)\n",
        DESER,
        "json.loads -> pickle.loads",
    ),
    ("_pickle", "from _pickle import loads\nloads(b)\n", DESER, "from _pickle import loads"),
    ("marshal", "import marshal\nmarshal.loads(b)\n", DESER, "marshal.loads"),
    ("shelve", "import shelve\nshelve.open(p)\n", DESER, "shelve.open"),
    ("dill", "import dill\ndill.load(f)\n", DESER, "dill"),
    ("jsonpickle", "import jsonpickle\njsonpickle.decode(s)\n", DESER, "jsonpickle"),
    ("yaml.load", "import yaml\nyaml.load(s)\n", DESER, "yaml.load"),
    ("yaml full Loader", "import yaml\nyaml.load(s, Loader=yaml.Loader)\n", DESER, "yaml.load"),
    ("yaml unsafe_load", "from yaml import unsafe_load\nunsafe_load(s)\n", DESER, "unsafe_load"),
    ("yaml **kwargs", "import yaml\nyaml.load(s, **kw)\n", DESER, "yaml.load"),
    ("yaml.load referenced", "import yaml\nparse = yaml.load\n", DESER, "yaml.load"),
    (
        "numpy allow_pickle",
        "import numpy as np\nnp.load(f, allow_pickle=True)\n",
        DESER,
        "np.load -> numpy.load",
    ),
    ("torch.load", "import torch\ntorch.load(f)\n", DESER, "torch.load"),
    ("joblib.load", "import joblib\njoblib.load(f)\n", DESER, "joblib.load"),
    ("pandas.read_pickle", "import pandas as pd\npd.read_pickle(f)\n", DESER, "read_pickle"),
    ("socket", "import socket\nsocket.create_connection(('h', 1))\n", NET, "socket"),
    ("urlopen", "from urllib.request import urlopen\nurlopen(u)\n", NET, "urlopen"),
    ("urllib attribute", "import urllib.request\nurllib.request.urlopen(u)\n", NET, "urllib"),
    ("requests", "import requests\nrequests.post(u, data=d)\n", NET, "requests.post"),
    ("httpx", "import httpx\nhttpx.get(u)\n", NET, "httpx"),
    ("http.client", "import http.client\nhttp.client.HTTPSConnection(h)\n", NET, "http.client"),
    ("smtplib", "import smtplib\nsmtplib.SMTP(h)\n", NET, "smtplib"),
    (
        "asyncio connection",
        "import asyncio\nasyncio.open_connection(h, 1)\n",
        NET,
        "asyncio.open_connection",
    ),
    ("aiohttp", "import aiohttp\naiohttp.ClientSession()\n", NET, "aiohttp"),
]


@pytest.mark.parametrize(
    ("text", "cat", "fragment"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE]
)
def test_hostile_additions_are_named(text: str, cat: str, fragment: str) -> None:
    reasons = content_risks("pkg/x.py", "", text)
    assert any(r.startswith(f"content: {cat}") and fragment in r for r in reasons), reasons


HONEST = [
    # (id, base text, merged text)
    (
        "unused import removed",
        "import os\nimport sys\nprint(sys.argv)\n",
        "import sys\nprint(sys.argv)\n",
    ),
    (
        "unused import removed above a process call",
        "import os\nimport subprocess\n\nsubprocess.run(['ls'], check=True)\n",
        "import subprocess\n\nsubprocess.run(['ls'], check=True)\n",
    ),
    (
        "docstring changed",
        '"""Old."""\nimport os\nos.system("ls")\n',
        '"""A better docstring.\n\nIt is longer."""\n\nimport os\n\nos.system("ls")\n',
    ),
    (
        "f-string without placeholders",
        "import os\nos.system('ls')\nprint(f'hello')\n",
        "import os\nos.system('ls')\nprint('hello')\n",
    ),
    (
        "imports split",
        "import os, subprocess\nsubprocess.call(['ls'])\n",
        "import os\nimport subprocess\n\nsubprocess.call(['ls'])\n",
    ),
    (
        "call reformatted",
        "import subprocess\nsubprocess.run(['ls'],check=True)\n",
        "import subprocess\n\nsubprocess.run(\n    ['ls'],\n    check=True,\n)\n",
    ),
    (
        "function moved",
        "import os\ndef a():\n    os.system('ls')\ndef b():\n    pass\n",
        "import os\ndef b():\n    pass\ndef a():\n    os.system('ls')\n",
    ),
    (
        "new plain test file",
        None,
        "from app import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    ),
    (
        "test with monkeypatch",
        None,
        "import os\n\ndef test_cwd(monkeypatch):\n"
        "    monkeypatch.setattr(os, 'getcwd', lambda: '/')\n    assert os.getcwd() == '/'\n",
    ),
    (
        "safe look-alikes",
        None,
        "import ast, json, re, sys, os, platform, yaml, logging, importlib.metadata\n"
        "import numpy as np, torch, multiprocessing, asyncio\n"
        "ast.literal_eval(s); json.loads(s); re.compile(p); yaml.safe_load(s)\n"
        "yaml.load(s, Loader=yaml.SafeLoader); np.load(f); torch.load(f, weights_only=True)\n"
        "platform.system(); os.path.join(a, b); print(x, file=sys.stderr)\n"
        "logging.getLogger(__name__); importlib.metadata.version('x'); hasattr(o, name)\n"
        "multiprocessing.cpu_count(); asyncio.run(main()); model.eval(); getattr(o, 'name')\n"
        "d = dict(**locals()); osmod = os if a else None\n"
        "import ssl\nif ssl and not os:\n    pass\nassert sys\n",
    ),
    (
        "visitor on self",
        None,
        "class V:\n    def visit(self, node):\n"
        "        return getattr(self, 'visit_' + node.kind)()\n",
    ),
    (
        "parameters named like builtins",
        None,
        "def run(eval=False, compile=None):\n    if eval:\n        return compile\n"
        "lambda exec: exec\n[eval for eval in xs]\n",
    ),
]


@pytest.mark.parametrize(("before", "after"), [c[1:] for c in HONEST], ids=[c[0] for c in HONEST])
def test_honest_changes_add_nothing(before: str | None, after: str) -> None:
    assert content_risks("pkg/x.py", before, after) == []


def test_only_what_the_pr_adds_counts() -> None:
    base = "import os\nfrom os import system as s\n\nos.system('ls')\ns('ls')\n"
    merged = base + "s('ls')\nos.system('rm -rf /')\n"
    assert content_risks("x.py", base, merged) == [
        "content: process execution added in x.py:6 (s -> os.system)",
        "content: process execution added in x.py:7 (os.system)",
    ]


def test_a_module_used_as_a_value_is_keyed_by_its_expression() -> None:
    base = "import os\nhelper(os)\nif x:\n    keep(os)\n"
    merged = "import os\nhelper(os)\nif x:\n    y = 1\n    keep(os)\nleak(os)\n"
    assert content_risks("x.py", base, merged) == [
        "content: dynamic code added in x.py:6 (module os used as a value)"
    ]


def test_changed_arguments_of_an_existing_call_count() -> None:
    base = "import subprocess\nsubprocess.run(['ls'])\n"
    merged = "import subprocess\nsubprocess.run(cmd, shell=True)\n"
    assert content_risks("x.py", base, merged) == [
        "content: process execution added in x.py:2 (subprocess.run)"
    ]


def test_an_alias_rebound_to_another_module_counts() -> None:
    base = "import json as codec\ncodec.loads(b)\n"
    merged = "import pickle as codec\ncodec.loads(b)\n"
    reasons = content_risks("x.py", base, merged)
    assert reasons == [
        "content: deserialisation added in x.py:1 (import pickle as codec)",
        "content: deserialisation added in x.py:2 (codec.loads -> pickle.loads)",
    ]


@pytest.mark.parametrize(
    ("before", "after", "fragment"),
    [
        (None, "def f(:\n", "x.py:1 does not parse (invalid syntax)"),
        ("x = 1\n", "x = 1\nif True:\nprint(2)\n", "x.py:3 does not parse (expected an indented"),
        (None, "x = 1\0\n", "x.py:1 does not parse"),
    ],
)
def test_a_file_that_does_not_parse_cannot_be_judged(
    before: str | None, after: str, fragment: str
) -> None:
    [reason] = content_risks("x.py", before, after)
    assert fragment in reason and "its risk cannot be judged" in reason


def test_an_unparsable_base_vouches_for_nothing() -> None:
    reasons = content_risks("x.py", "def broken(:\n", "import os\nos.system('id')\n")
    assert reasons == ["content: process execution added in x.py:2 (os.system)"]


def test_unparsable_raises_with_the_line() -> None:
    with pytest.raises(Unparsable, match="line 2: invalid syntax"):
        uses("x = 1\nx +* 2\n")


def _notebook(*cells: tuple[str, str]) -> str:
    return json.dumps(
        {"nbformat": 4, "cells": [{"cell_type": t, "source": s, "outputs": []} for t, s in cells]}
    )


NOTEBOOK_BASE = _notebook(("markdown", "# Title"), ("code", "%matplotlib inline\nimport os\n"))


@pytest.mark.parametrize(
    ("cells", "fragment"),
    [
        ((("code", "!pip install evil"),), "process execution added in nb.ipynb cell 1:1 (!pip"),
        ((("code", "files = !ls -la"),), "process execution added in nb.ipynb cell 1:1 (files"),
        ((("code", "%%bash\ncurl x | sh\n"),), "process execution added in nb.ipynb cell 1:1"),
        ((("code", "%pip install x"),), "process execution added in nb.ipynb cell 1:1 (%pip"),
        ((("code", "%run evil.py"),), "dynamic code added in nb.ipynb cell 1:1 (%run"),
        ((("markdown", "x"), ("code", "import os\nos.system('id')")), "nb.ipynb cell 2:2"),
        ((("code", "import os"), ("code", "o = os\no.system('id')")), "cell 2:2 (o.system"),
    ],
)
def test_notebook_cells_are_code(cells: tuple[tuple[str, str], ...], fragment: str) -> None:
    reasons = content_risks("nb.ipynb", NOTEBOOK_BASE, _notebook(*cells))
    assert any(fragment in r for r in reasons), reasons


@pytest.mark.parametrize(
    "after",
    [
        NOTEBOOK_BASE.replace('"outputs": []', '"outputs": [{"text": "new output"}]'),
        _notebook(("markdown", "# Another title"), ("code", "%matplotlib inline\nimport os\n")),
        _notebook(("code", "%%time\nx = 1\n"), ("code", "df.head?\nprint(x)")),
    ],
    ids=["outputs only", "markdown only", "harmless magics"],
)
def test_honest_notebook_changes_add_nothing(after: str) -> None:
    assert content_risks("nb.ipynb", NOTEBOOK_BASE, after) == []


def test_a_notebook_that_does_not_parse_cannot_be_judged() -> None:
    [reason] = content_risks("nb.ipynb", None, "{not json")
    assert reason.startswith("content: nb.ipynb does not parse as a notebook")


@pytest.mark.parametrize(
    ("path", "before", "after", "fragment"),
    [
        (
            "scripts/deploy.sh",
            "echo a\n",
            "echo a\ncurl x | sh\n",
            "script changed in scripts/deploy.sh:2 (1 line added",
        ),
        ("bin/tool", None, "#!/bin/sh\nrm -rf /\n", "script changed in bin/tool:1"),
        (
            "bin/tool",
            None,
            "#!/usr/bin/env python3\nimport os\nos.system('id')\n",
            "process execution added in bin/tool:3",
        ),
        ("site/evil.pth", None, "import os; os.system('id')\n", ".pth file changed in"),
        ("src/sitecustomize.py", None, "x = 1\n", "interpreter start-up hook"),
        ("pkg/_speed.so", "\x7fELF1", "\x7fELF2", "compiled or native code changed"),
        ("pkg/fast.pyx", None, "cdef int x = 1\n", "compiled or native code changed"),
        (".envrc", None, "export X=1\n", "script changed in .envrc:1"),
        ("tests/data/model.pkl", "\x80\x04K\x01.", "\x80\x04K\x02.", "deserialisation data"),
        (
            "conf/app.yaml",
            "a: 1\n",
            "a: 1\nb: !!python/object/apply:os.system [id]\n",
            "deserialisation added in conf/app.yaml:2 (!!python/ tag)",
        ),
        (
            "pkg/x.py",
            None,
            "# -*- coding: utf-7 -*-\nx = 1\n",
            "dynamic code added in pkg/x.py:1 (source encoding utf-7",
        ),
    ],
)
def test_other_files_that_run(path: str, before: str | None, after: str, fragment: str) -> None:
    reasons = content_risks(path, before, after)
    assert any(fragment in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("path", "before", "after"),
    [
        ("scripts/deploy.sh", "echo a\n", None),  # deleted
        ("scripts/deploy.sh", "echo a\necho b\n", "echo a\n"),  # lines removed only
        ("bin/notes", None, "just text\n"),  # no shebang
        ("Makefile", None, "all:\n\tcurl x | sh\n"),  # the config rules' (config_paths)
        ("docs/guide.md", None, "```sh\nrm -rf /\n```\n"),
        ("conf/app.yaml", "a: 1\n", "a: 2\n"),
        ("pkg/x.py", None, "# -*- coding: latin-1 -*-\nx = 1\n"),
        ("pkg/x.py", "# coding: utf-7\nx = 1\n", "# coding: utf-7\nx = 2\n"),
    ],
)
def test_files_that_add_nothing_that_runs(path: str, before: str | None, after: str | None) -> None:
    assert content_risks(path, before, after) == []


@pytest.mark.parametrize(
    ("path", "merged", "expected"),
    [
        ("a/b.py", None, "python"),
        ("a/b.PYW", None, "python"),
        ("nb.ipynb", None, "notebook"),
        ("x.pth", None, "pth"),
        ("run.sh", None, "script"),
        ("lib.so", None, "opaque"),
        ("bin/tool", None, "maybe"),
        ("bin/tool", "#!/usr/bin/python\n", "python"),
        ("bin/tool", "#!/bin/bash\n", "script"),
        ("bin/tool", "plain\n", None),
        ("README.md", None, None),
        (".gitignore", None, None),
    ],
)
def test_kind(path: str, merged: str | None, expected: str | None) -> None:
    assert kind(path, merged) == expected
