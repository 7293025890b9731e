"""What a diff must not add unseen: the names that run processes or code, unpickle, or connect.

A name matches an entry when it is the entry or lies under it (``subprocess`` covers
``subprocess.run``). Names are the resolved, qualified ones (``from os import system as s``
makes ``s`` mean ``os.system``). The tables are a denylist: what they do not name is judged by
the other gates (tests, the size rules, a human for every agent change above autonomy 2).
"""

from __future__ import annotations

PROCESS = "process execution"
DYNAMIC = "dynamic code"
DESERIALISE = "deserialisation"
NETWORK = "network access"


def names(text: str, prefix: str = "") -> tuple[str, ...]:
    """The words of ``text``, each with ``prefix`` (a table written as prose is shorter)."""
    return tuple(prefix + name for name in text.split())


_OS_EXEC = names("execl execle execlp execlpe execv execve execvp execvpe")
_OS_SPAWN = names("spawnl spawnle spawnlp spawnlpe spawnv spawnve spawnvp spawnvpe")
_OS_PROCESS = (*_OS_EXEC, *_OS_SPAWN, *names("system popen posix_spawn posix_spawnp"))
_PROCESS = (
    *names(" ".join(_OS_PROCESS) + " fork forkpty startfile", "os."),
    *names("subprocess _posixsubprocess _winapi.CreateProcess pty.spawn pty.fork"),
    *names("create_subprocess_exec create_subprocess_shell subprocess", "asyncio."),
    *names("commands popen2 pipes platform.popen webbrowser distutils.spawn.spawn"),
    *names("Process Pool pool get_context set_executable spawn", "multiprocessing."),
    *names("popen_fork popen_spawn_posix forkserver", "multiprocessing."),
    *names("ProcessPoolExecutor process", "concurrent.futures."),
    *names("sh pexpect ptyprocess plumbum sarge invoke fabric"),
)
_DYNAMIC = (
    *names("eval exec compile __import__ breakpoint globals __loader__ __spec__", "builtins."),
    *names("import_module reload __import__ machinery", "importlib."),
    *names("spec_from_file_location spec_from_loader module_from_spec", "importlib.util."),
    *names("importlib.metadata.entry_points importlib_metadata.entry_points"),
    *names("pkg_resources.iter_entry_points pkg_resources.load_entry_point"),
    *names("imp zipimport runpy pkgutil.resolve_name pydoc.locate pydoc.importfile"),
    *names("CodeType FunctionType LambdaType", "types."),
    *names("code codeop timeit.timeit timeit.repeat timeit.Timer doctest"),
    *names("pdb.run pdb.runeval profile.run profile.runctx cProfile.run cProfile.runctx"),
    *names("logging.config.fileConfig codecs.register ctypes _ctypes cffi"),
    *names("typing.get_type_hints typing.ForwardRef inspect.get_annotations"),
    *names("modules meta_path path_hooks _getframe", "sys."),
    *names("inspect.currentframe inspect.stack inspect.getmodule"),
    *names("get_objects get_referrers get_referents", "gc."),
)
_DESERIALISE = (
    *names("pickle _pickle cPickle marshal shelve dill cloudpickle jsonpickle"),
    *names("joblib.load pandas.read_pickle multiprocessing.managers"),
    *names("unsafe_load unsafe_load_all full_load full_load_all", "yaml."),
)
_NETWORK = (
    *names("socket _socket socketserver ssl.wrap_socket ssl.get_server_certificate"),
    *names("ssl.create_connection urllib.request urllib.urlopen urllib2 http.client"),
    *names("http.server httplib xmlrpc xmlrpclib ftplib smtplib poplib imaplib nntplib"),
    *names("telnetlib logging.config.listen multiprocessing.connection"),
    *names("open_connection open_unix_connection start_server start_unix_server", "asyncio."),
    *names("SocketHandler DatagramHandler HTTPHandler SMTPHandler", "logging.handlers."),
    *names("requests httpx aiohttp urllib3 pycurl websocket websockets paramiko grpc zmq"),
    *names("boto3 botocore tornado.httpclient twisted.internet"),
)
SENSITIVE: dict[str, str] = {
    **dict.fromkeys(_NETWORK, NETWORK),
    **dict.fromkeys(_DESERIALISE, DESERIALISE),
    **dict.fromkeys(_DYNAMIC, DYNAMIC),
    **dict.fromkeys(_PROCESS, PROCESS),
}
# Same module under another name: os's C half, Python 2's builtins.
ALIASES = {"posix": "os", "nt": "os", "__builtin__": "builtins"}
# Modules other modules import and so expose as attributes (shutil.os, tempfile._os): a chain
# through one of these means the module itself.
REEXPORTED = frozenset(
    names("os posix nt sys builtins subprocess importlib pickle socket marshal ctypes pty runpy")
)

# Safe only with the right arguments (checked at the call; a bare reference counts).
CONDITIONAL = dict.fromkeys(names("yaml.load yaml.load_all numpy.load torch.load"), DESERIALISE)
SAFE_YAML_LOADERS = frozenset(names("SafeLoader CSafeLoader BaseLoader CBaseLoader", "yaml."))

# Called on an object nobody can resolve (a parameter, ``self.x``): distinctive enough to count.
UNRESOLVED_CALLS: dict[str, str] = {
    **dict.fromkeys((*_OS_PROCESS, *names("check_output check_call Popen getoutput")), PROCESS),
    **dict.fromkeys(names("subprocess_exec subprocess_shell"), PROCESS),
    **dict.fromkeys(names("create_subprocess_exec create_subprocess_shell"), PROCESS),
    **dict.fromkeys(names("import_module __import__ exec_module load_module"), DYNAMIC),
    **dict.fromkeys(names("unsafe_load full_load"), DESERIALISE),
    **dict.fromkeys(names("urlopen create_connection open_connection sock_connect"), NETWORK),
}

# Attributes that reach a function's globals, the builtins or the running frames.
ESCAPE_ATTRIBUTES = frozenset(
    names("__globals__ __builtins__ __subclasses__ __code__ __loader__ __import__")
    + names("func_globals f_globals f_locals f_builtins f_back gi_frame cr_frame ag_frame")
    + names("tb_frame")
)
# getattr(x, "lit") on an object nobody can resolve, with one of these names: dynamic code.
SENSITIVE_LEAVES = frozenset(
    {*UNRESOLVED_CALLS, *ESCAPE_ATTRIBUTES, *names("eval exec compile globals modules")}
)
GETATTR_LIKE = frozenset(
    names("builtins.getattr builtins.setattr builtins.delattr builtins.hasattr")
    + names("inspect.getattr_static")
    + names("builtins.object.__getattribute__ builtins.type.__getattribute__")
)
NAME_GETTERS = frozenset(names("attrgetter methodcaller", "operator."))

_PARENTS = frozenset(
    {"builtins"}
    | {k.rsplit(".", i)[0] for k in (*SENSITIVE, *CONDITIONAL) for i in range(1, k.count(".") + 1)}
)


def category(name: str) -> str | None:
    """The category ``name`` (qualified, e.g. ``os.system``) falls in, or None."""
    parts = _canonical(name).split(".")
    for i in range(len(parts), 0, -1):
        found = SENSITIVE.get(".".join(parts[:i]))
        if found:
            return found
    return None


def capable(name: str) -> bool:
    """Whether ``name`` is a module with sensitive members (os, sys, builtins, importlib...)."""
    return _canonical(name) in _PARENTS


def members(module: str) -> set[str]:
    """The sensitive names directly under ``module`` (what ``from module import *`` binds)."""
    prefix = _canonical(module) + "."
    return {
        k[len(prefix) :].split(".")[0] for k in (*SENSITIVE, *CONDITIONAL) if k.startswith(prefix)
    }


def _canonical(name: str) -> str:
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        if parts[i].lstrip("_") in REEXPORTED:
            parts = [parts[i].lstrip("_"), *parts[i + 1 :]]
            break
    return ".".join([ALIASES.get(parts[0], parts[0]), *parts[1:]])
