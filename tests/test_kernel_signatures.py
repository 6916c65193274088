"""Every replay kernel callee is compiled for one signature: each new argument type (a literal
``-1`` instead of an int64, say) compiles the callee again and lengthens the first run's compile
(docs/engine.md). A fresh process with an empty Numba cache compiles the one-core and the
coherent kernels (a cached kernel would not compile its callees at all), then counts each
callee's signatures."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import json
    import numpy as np
    from numba.core.registry import CPUDispatcher
    from memsim.engine import kernel
    from memsim.engine.replay import Replay
    from memsim.machine import Cache, Machine
    from memsim.trace.events import NO_OBJECT, OP_IFETCH, OP_READ, OP_RMW, OP_WRITE, Events

    rng = np.random.default_rng(7)
    for cores in (1, 2):
        machine = Machine(name="m", cores=cores, line_size=64, memory_latency=100, conflict_shadow=True, levels=(
            (Cache("L1", 4, 2, 1),), (Cache("L2", 8, 4, 10, inclusion="inclusive"),),
            (Cache("L3", 16, 4, 30, shared_by=cores, inclusion="exclusive"),)))
        ev = Events.empty(4000)
        ev.op[:] = rng.choice([OP_READ, OP_WRITE, OP_RMW, OP_IFETCH], len(ev))
        ev.core[:] = rng.integers(0, cores, len(ev))
        ev.obj[:] = NO_OBJECT
        ev.size[:] = rng.choice([1, 8, 100], len(ev))
        ev.addr[:] = rng.integers(0, 1 << 14, len(ev))
        Replay(machine).feed(ev)
    print(json.dumps({name: len(f.overloads) for name, f in vars(kernel).items() if isinstance(f, CPUDispatcher)}))
""")


def test_each_kernel_callee_has_one_signature(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("MEMSIM_NUMBA_CACHE_SET", None)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout
    compiled = json.loads(out.splitlines()[-1])
    assert {name for name, n in compiled.items() if n} >= {
        "replay_chunk_private", "replay_chunk_coherent", "_install", "_install_out_of_line", "_share", "_flush_run"}
    assert {name: n for name, n in compiled.items() if n > 1} == {}
