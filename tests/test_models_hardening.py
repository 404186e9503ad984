"""The paper's models, builders, schedules, theory and discrete SGD refuse bad arguments with one
clear line naming them (never a silently wrong result or a bare error from deep inside); Ctrl-C
stops a long ``run_sgd`` or ``solve`` within a second and leaves the process usable; BLAS thread
limits come back after runs from several Python threads."""

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import sdesim
from sdesim.normalized import (Dataset, NormalizedLinearClassifier, Schedule, SphereModel, WeightNormMLP,
                               full_from_polar, gaussian_mixture, group_norms, load_digits, polar_sde,
                               polar_state, run_sgd, sgd_draws, sgd_sde, svag_coefficients, theory)

DATA = gaussian_mixture(n=30, dim=3, n_classes=3, n_test=6, seed=2)
SPHERE = SphereModel(5)
CLF = NormalizedLinearClassifier(DATA, batch_size=4)
MLP = WeightNormMLP(DATA, hidden=3, batch_size=4)
W_MLP = MLP.random_init(seed=1)
W_MLP_ZERO_UNIT = W_MLP.copy()
W_MLP_ZERO_UNIT[MLP.p:2 * MLP.p] = 0.0  # hidden unit 1 all zeros
UNIT = np.ones(5) / np.sqrt(5)


def _polar(wbar=UNIT, G=1.0, eta=0.1):
    return np.r_[wbar, G, eta]


def _dataset(X=((0.0, 1.0), (1.0, 1.0), (2.0, 1.0)), y=(0, 1, 0), n_classes=2):
    return Dataset(X, y, np.zeros((0, 2)), np.zeros(0, np.int64), n_classes, "t")


def _solve(sde, y0):
    return sdesim.solve(sde, y0, [0.0, 10.0], dt=1.0)


ZERO_GROUP = "a scale-invariant group of {} is zero; its direction is undefined"

# (id, call, exception, message pattern). All but six (hidden=0, batch_size > n, non-increasing
# or NaN schedule times, NaN or negative schedule values: refused before too, kept as guards) were
# accepted silently, or failed with a bare or misleading error, at 4c3ca98.
REFUSED = [
    # models
    ("sphere d=2.5", lambda: SphereModel(2.5), ValueError, "d must be an integer"),
    ("sphere d='5'", lambda: SphereModel("5"), TypeError, "d must be an integer"),
    ("sphere d=True", lambda: SphereModel(True), TypeError, "d must be an integer"),
    ("sphere s='1'", lambda: SphereModel(5, s="1"), TypeError, "s must be a real number"),
    ("sphere s=True", lambda: SphereModel(5, s=True), TypeError, "s must be a real number"),
    ("sphere H inf", lambda: SphereModel(2, H=[[np.inf, 0], [0, 1]]), ValueError, "H contains NaN or inf"),
    ("sphere H asymmetric", lambda: SphereModel(2, H=[[1, 1e-7], [0, 1]]), ValueError, "H must be symmetric"),
    ("sphere H complex", lambda: SphereModel(2, H=np.eye(2) * 1j), TypeError, "H must be a real"),
    ("sphere H wrong shape", lambda: SphereModel(2, H=np.ones(2)), ValueError, r"got shape \(2,\)"),
    ("sphere grad zero w", lambda: SPHERE.grad(np.zeros(5)), ValueError, ZERO_GROUP.format("w")),
    ("sphere loss zero w", lambda: SphereModel(2, H=np.eye(2)).loss(np.zeros(2)), ValueError, "is zero"),
    ("sphere traces zero w", lambda: SPHERE.noise_traces(np.zeros(5)), ValueError, "is zero"),
    ("sphere grad short w", lambda: SPHERE.grad(np.ones(3)), ValueError, r"w must have shape \(5,\)"),
    ("clf batch_size=2.7", lambda: NormalizedLinearClassifier(DATA, batch_size=2.7), ValueError,
     "batch_size must be an integer"),
    ("clf batch_size='2'", lambda: NormalizedLinearClassifier(DATA, batch_size="2"), TypeError, "batch_size"),
    ("clf batch_size=True", lambda: NormalizedLinearClassifier(DATA, batch_size=True), TypeError, "batch_size"),
    ("clf replace='no'", lambda: NormalizedLinearClassifier(DATA, batch_size=4, replace="no"), TypeError,
     "replace must be True or False"),
    ("clf scale='2'", lambda: NormalizedLinearClassifier(DATA, batch_size=4, scale="2"), TypeError, "scale"),
    ("clf data=None", lambda: NormalizedLinearClassifier(None), TypeError, "needs a Dataset"),
    ("mlp hidden=0", lambda: WeightNormMLP(DATA, hidden=0, batch_size=4), ValueError, "hidden must be"),
    ("clf batch_size > n", lambda: NormalizedLinearClassifier(DATA, batch_size=31, replace=True), ValueError,
     r"batch_size must lie in \[1, n = 30\]"),
    ("mlp hidden=2.5", lambda: WeightNormMLP(DATA, hidden=2.5, batch_size=4), ValueError,
     "hidden must be an integer"),
    ("mlp hidden=True", lambda: WeightNormMLP(DATA, hidden=True, batch_size=4), TypeError, "hidden"),
    ("mlp gain='1'", lambda: WeightNormMLP(DATA, batch_size=4, gain="1"), TypeError, "gain"),
    ("mlp seed=1.5", lambda: WeightNormMLP(DATA, batch_size=4, seed=1.5), ValueError, "seed"),
    ("random_init norm=-1", lambda: MLP.random_init(norm=-1.0), ValueError, "norm"),
    ("random_init norm=0", lambda: MLP.random_init(norm=0.0), ValueError, "norm"),
    ("minibatch_grad float idx", lambda: MLP.minibatch_grad(W_MLP, [0.5, 1.7]), ValueError, "idx"),
    ("logits X too narrow", lambda: CLF.logits(CLF.random_init(), DATA.X[:, :2]), ValueError,
     r"X must have shape \(m, 4\)"),
    ("logits X NaN", lambda: CLF.logits(CLF.random_init(), np.full((2, 4), np.nan)), ValueError,
     "X contains NaN"),
    ("accuracy X without y", lambda: CLF.accuracy(CLF.random_init(), DATA.X_test), ValueError, "both X and y"),
    # data
    ("labels NaN", lambda: _dataset(y=(np.nan, 1.0, 0.0)), ValueError, "labels must be integers"),
    ("labels 0.5", lambda: _dataset(y=(0.5, 1.0, 0.0)), ValueError, "labels must be integers"),
    ("n_classes=2.5", lambda: _dataset(n_classes=2.5), ValueError, "n_classes must be an integer"),
    ("n_classes=1", lambda: _dataset(y=(0, 0, 0), n_classes=1), ValueError, "n_classes"),
    ("features strings", lambda: _dataset(X=(("a", "b"),) * 3), TypeError, "real arrays"),
    ("mixture n=2.5", lambda: gaussian_mixture(n=2.5), ValueError, "n must be an integer"),
    ("mixture dim=True", lambda: gaussian_mixture(dim=True), TypeError, "dim"),
    ("mixture separation=nan", lambda: gaussian_mixture(separation=np.nan), ValueError, "separation"),
    ("digits test_fraction='0.2'", lambda: load_digits(test_fraction="0.2"), TypeError, "test_fraction"),
    ("digits seed=0.5", lambda: load_digits(seed=0.5), ValueError, "seed"),
    # schedules and rates
    ("schedule times equal", lambda: Schedule([0.1, 0.2, 0.3], [5, 5]), ValueError, "strictly increasing"),
    ("schedule times NaN", lambda: Schedule([0.1, 0.2], [np.nan]), ValueError, "times must be finite"),
    ("schedule values NaN", lambda: Schedule([np.nan]), ValueError, "finite and positive"),
    ("schedule values negative", lambda: Schedule([0.1, -0.1], [3]), ValueError, "finite and positive"),
    ("schedule values strings", lambda: Schedule(["0.1"]), TypeError, "schedule values must be numbers"),
    ("schedule values bools", lambda: Schedule([True]), TypeError, "schedule values must be numbers"),
    ("schedule values 2-d", lambda: Schedule([[0.1]]), ValueError, "1-d"),
    ("schedule at NaN", lambda: Schedule([0.1])(np.nan), ValueError, "NaN"),
    ("sgd_sde lr='0.1'", lambda: sgd_sde(SPHERE, "0.1", 1e-3), TypeError, "lr must be a positive number"),
    ("sgd_sde lr=True", lambda: sgd_sde(SPHERE, True, 1e-3), TypeError, "lr must be a positive number"),
    ("run_sgd lr='0.1'", lambda: run_sgd(SPHERE, "0.1", 1e-3, UNIT, [0, 2]), TypeError, "lr"),
    ("polar_state lr='0.1'", lambda: polar_state(UNIT, "0.1"), TypeError, "lr"),
    # builders and states
    ("sgd_sde model=None", lambda: sgd_sde(None, 0.1, 1e-3), TypeError, "sgd_sde needs a model"),
    ("polar_sde project='yes'", lambda: polar_sde(SPHERE, 0.1, 1e-3, project="yes"), TypeError, "project"),
    ("solve zero w0", lambda: _solve(sgd_sde(SPHERE, 0.1, 1e-3), np.zeros(5)), ValueError,
     ZERO_GROUP.format("y0")),
    ("solve zero hidden unit", lambda: _solve(sgd_sde(MLP, 0.1, 1e-3), W_MLP_ZERO_UNIT), ValueError,
     ZERO_GROUP.format("y0") + r" \(group 1, entries 4:8\)"),
    ("solve zero path 1", lambda: _solve(sgd_sde(SPHERE, 0.1, 1e-3), np.array([UNIT, np.zeros(5)])),
     ValueError, r"is zero; its direction is undefined \(path 1\)"),
    ("solve huge w0", lambda: _solve(sgd_sde(SPHERE, 0.1, 1e-3), np.full(5, 1e200)), ValueError,
     "norm too large to square"),
    ("solve polar zero direction", lambda: _solve(polar_sde(SPHERE, 0.1, 1e-3), _polar(wbar=np.zeros(5))),
     ValueError, "is zero"),
    ("solve polar |Wbar|=3", lambda: _solve(polar_sde(SPHERE, 0.1, 1e-3), _polar(wbar=3 * UNIT)), ValueError,
     "far from 1"),
    ("solve polar G=0", lambda: _solve(polar_sde(SPHERE, 0.1, 1e-3), _polar(G=0.0)), ValueError,
     "G_0 = .* must be positive"),
    ("solve polar G<0", lambda: _solve(polar_sde(SPHERE, 0.1, 1e-3), _polar(G=-1.0)), ValueError, "G_0"),
    ("solve polar eta=0", lambda: _solve(polar_sde(SPHERE, 0.1, 1e-3), _polar(eta=0.0)), ValueError,
     "learning rate in force"),
    ("polar_state zero", lambda: polar_state(np.zeros(5), 0.1), ValueError, ZERO_GROUP.format("w0")),
    ("polar_state NaN", lambda: polar_state(np.r_[np.nan, UNIT[1:]], 0.1), ValueError, "w0 contains NaN"),
    ("polar_state wrong d", lambda: polar_state(np.ones(5), 0.1, model=SphereModel(4)), ValueError, "shape"),
    ("polar_state t0=nan", lambda: polar_state(UNIT, 0.1, t0=np.nan), ValueError, "t0"),
    ("full_from_polar wrong length", lambda: full_from_polar(np.ones(3), model=SphereModel(4)), ValueError,
     "polar states of length 6"),
    ("group_norms wrong offsets", lambda: group_norms(np.ones(4), [0, 2, 5]), ValueError, "offsets"),
    # theory
    ("G_inf lam_e=0", lambda: theory.G_inf(0.0, 1.0), ValueError, "lam_e"),
    ("norm4 lam=0", lambda: theory.norm4(1.0, 1.0, 0.1, 0.0, 1.0), ValueError, "lam"),
    ("norm4 t=nan", lambda: theory.norm4(np.array([0.0, np.nan]), 1.0, 0.1, 0.1, 1.0), ValueError, "t"),
    ("eta_eff_inf lam_e<0", lambda: theory.eta_eff_inf(-1.0, 1.0), ValueError, "lam_e"),
    ("eta_eff_inf tau='1'", lambda: theory.eta_eff_inf(0.1, "1"), TypeError, "tau"),
    ("equilibration eps=0", lambda: theory.equilibration_time(2.0, 0.1, 0.0), ValueError, "eps"),
    ("lr decay k=0", lambda: theory.lr_decay_eta_eff_ratio(1.0, 0.0, 0.1), ValueError, "k"),
    ("direction_correlation G0=0", lambda: theory.direction_correlation(1.0, 0.0, 0.1, 1.0), ValueError, "G0"),
    ("sgd fixed point eta lam=2", lambda: theory.sgd_norm4_fixed_point(2.0, 1.0, 1.0), ValueError,
     r"eta \* lam must be < 2"),
    ("sgd angle eta lam=10", lambda: theory.sgd_angle_per_step(10.0, 1.0), ValueError, r"eta \* lam"),
    ("momentum a=1", lambda: theory.momentum_norm4(0.1, 0.1, 1.0, 1.0), ValueError, "a must"),
    # discrete SGD
    ("record_steps 1e30", lambda: run_sgd(SPHERE, 0.1, 1e-3, UNIT, [0, 1e30]), ValueError, r"below 2\*\*32"),
    ("record_steps uint64", lambda: run_sgd(SPHERE, 0.1, 1e-3, UNIT, np.array([0, 2**63 + 5], np.uint64)),
     ValueError, r"below 2\*\*32"),
    ("run_sgd zero hidden unit", lambda: run_sgd(MLP, 0.1, 1e-3, W_MLP_ZERO_UNIT, [0, 2]), ValueError,
     ZERO_GROUP.format("w0") + r" \(group 1, entries 4:8\)"),
    ("run_sgd huge w0", lambda: run_sgd(SPHERE, 0.1, 1e-3, np.full(5, 1e200), [0, 2]), ValueError,
     "norm too large to square"),
    ("run_sgd record_loss='no'", lambda: run_sgd(SPHERE, 0.1, 1e-3, UNIT, [0, 2], record_loss="no"), TypeError,
     "record_loss"),
    ("sgd_draws run=-1", lambda: sgd_draws(SPHERE, 0, -1, 0), ValueError, "run"),
    ("sgd_draws run=2.5", lambda: sgd_draws(SPHERE, 0, 2.5, 0), ValueError, "run"),
    ("sgd_draws substep=2**40", lambda: sgd_draws(SPHERE, 0, 0, 2**40), ValueError, "substep"),
    ("sgd_draws seed=1.5", lambda: sgd_draws(SPHERE, 1.5, 0, 0), TypeError, "seed"),
    ("svag_coefficients 0", lambda: svag_coefficients(0), ValueError, "svag"),
    ("svag_coefficients 2.5", lambda: svag_coefficients(2.5), ValueError, "svag"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_bad_arguments_are_refused_with_one_line_naming_them(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_numpy_scalars_and_plain_data_are_accepted():
    """NumPy integers and floats pass wherever Python numbers do; lists become float64 data."""
    m = SphereModel(np.int64(4), s=np.float32(0.5), H=np.eye(4, dtype=np.int32))
    assert (m.d, m.s) == (4, 0.5) and type(m.d) is int and m.H.dtype == np.float64
    data = _dataset()  # nested tuples of numbers
    assert data.X.dtype == np.float64 and data.y.dtype == np.int64 and data.X.flags.c_contiguous
    assert NormalizedLinearClassifier(data, batch_size=np.int64(2), replace=np.bool_(True)).batch_size == 2
    res = run_sgd(SPHERE, np.float32(0.1), 1e-3, UNIT, [0, 2], momentum=np.float32(0.5), seed=np.uint64(3))
    assert res.momentum == 0.5 and res.seed == 3
    assert np.shape(theory.equilibration_time(2.0, np.array([0.1, 0.2]), 0.01)) == (2,)


def test_rounding_asymmetry_of_H_is_removed():
    """An H symmetric up to rounding is kept exactly symmetric (the kernel's H wbar is the gradient of
    1/2 wbar^T H wbar only for a symmetric H)."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))
    H = q @ np.diag(np.arange(6.0)) @ q.T
    assert not np.array_equal(H, H.T)  # the rounding this test is about
    m = SphereModel(6, H=H)
    assert np.array_equal(m.H, m.H.T) and np.allclose(m.H, H, rtol=0, atol=1e-14)


def test_polar_state_check_accepts_drifted_directions():
    """A polar state carried over from an earlier plain-EM solve (|Wbar| drifted from 1) still runs."""
    sde = polar_sde(SPHERE, 0.1, 1e-3)
    sde.state_check(np.array([_polar(wbar=1.3 * UNIT), _polar(wbar=0.7 * UNIT)]))
    with pytest.raises(ValueError, match=r"\|Wbar_0\| = 0.1 \(path 1\), far from 1"):
        sde.state_check(np.array([_polar(), _polar(wbar=0.1 * UNIT)]))


# ----------------------------------------------------------------------------- BLAS thread limits
def _blas_threads():
    from threadpoolctl import threadpool_info
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_blas_threads_come_back_after_runs_from_several_python_threads():
    """Runs from several Python threads whose calls overlap without nesting (the first to start ends
    first, while the others run; each thread stays alive) leave every BLAS library at the thread
    count it had."""
    from threadpoolctl import ThreadpoolController
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # older threadpoolctl: no controlling thread
        OpenBLASController = None
    model = SphereModel(20)
    w0 = np.ones(model.d)
    sde = sgd_sde(model, 0.1, 1e-3)
    spans = {}

    def sgd(name, steps):
        t = time.perf_counter()
        run_sgd(model, 0.1, 1e-3, w0, [0, steps], n_runs=2, n_threads=1, record_loss=False)
        spans[name] = (t, time.perf_counter())

    def solve(name, steps):
        t = time.perf_counter()
        sdesim.solve(sde, w0, [0.0, float(steps)], dt=1.0, n_paths=2, n_threads=1, reduce=True)
        spans[name] = (t, time.perf_counter())

    sgd("warm-up", 2), solve("warm-up", 2)  # compiles; loads every BLAS library these calls use
    # steps per second of each call on this machine, so that the calls below last about as planned
    sgd("rate", 100_000)
    sgd_rate = 100_000 / (spans["rate"][1] - spans["rate"][0])
    solve("rate", 300_000)
    solve_rate = 300_000 / (spans["rate"][1] - spans["rate"][0])
    original = ThreadpoolController().limit(limits=3, user_api="blas")  # a count one thread cannot hide
    if OpenBLASController is not None:
        OpenBLASController.clear_controlling_thread(force=True)  # no Python thread owns the limits yet
    before = _blas_threads()
    release = threading.Event()
    done = [threading.Event() for _ in range(2)]

    def worker(i, call, name, steps):
        call(name, steps)
        done[i].set()
        release.wait()  # stays alive

    # ~0.6 s, ~2 s and ~1.5 s alone (steps by the rates measured above), started 0.1 s apart:
    # the first to start ends first, while the others run
    threads = [threading.Thread(target=worker, args=(0, sgd, "thread 1", int(0.6 * sgd_rate))),
               threading.Thread(target=worker, args=(1, solve, "thread 2", int(2.0 * solve_rate)))]
    try:
        for th in threads:
            th.start()
            time.sleep(0.1)
        sgd("main", int(1.5 * sgd_rate))
        for ev in done:
            ev.wait()
        after = _blas_threads()
    finally:
        release.set()
        for th in threads:
            th.join()
        original.restore_original_limits()
        if OpenBLASController is not None:
            OpenBLASController.clear_controlling_thread(force=True)
    assert after == before
    (s1, e1), (s2, e2), (s3, e3) = spans["thread 1"], spans["thread 2"], spans["main"]
    assert s1 < s2 < s3 < e1 < min(e2, e3), f"the calls did not overlap as planned (machine too busy?): {spans}"


# ----------------------------------------------------------------------------- Ctrl-C
_SIGINT_SCRIPT = textwrap.dedent("""
    import os, signal, threading, time
    import numpy as np
    import sdesim
    from sdesim.normalized import NormalizedLinearClassifier, SphereModel, gaussian_mixture, run_sgd, sgd_sde

    sphere = SphereModel(50)
    clf = NormalizedLinearClassifier(gaussian_mixture(n=400, dim=20, n_test=200), batch_size=16)
    w0, w0c = np.ones(sphere.d), np.ones(clf.d)
    sde = sgd_sde(sphere, 0.1, 1e-3)

    def small():
        return run_sgd(sphere, 0.1, 1e-3, w0, [0, 20], n_runs=4, seed=1).norms

    ref = small()  # compiles
    run_sgd(clf, 0.1, 1e-3, w0c, [0, 2], n_runs=2)
    sdesim.solve(sde, w0, [0.0, 2.0], dt=1.0, n_paths=2, reduce=True)
    long_calls = {  # each hours of work
        "run_sgd, 1 thread": lambda: run_sgd(sphere, 0.1, 1e-3, w0, [0, 10**9], n_runs=8, n_threads=1),
        "run_sgd, 2 threads": lambda: run_sgd(sphere, 0.1, 1e-3, w0, [0, 10**9], n_runs=8, n_threads=2),
        "run_sgd, data model, a record every step": lambda: run_sgd(clf, 0.1, 1e-3, w0c, np.arange(2 * 10**5),
                                                                    n_runs=4, n_threads=2),
        "solve(sgd_sde)": lambda: sdesim.solve(sde, w0, [0.0, 1e9], dt=1.0, n_paths=8, reduce=True),
    }
    for name, call in long_calls.items():
        sent = []
        def interrupt():
            time.sleep(1.5)
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=interrupt, daemon=True).start()
        try:
            call()
            print(f"{name}: FINISHED", flush=True)
        except KeyboardInterrupt:
            print(f"{name}: LATENCY {time.perf_counter() - sent[0]:.4f}", flush=True)
        assert np.array_equal(small(), ref)  # usable afterwards, same numbers
        sdesim.solve(sde, w0, [0.0, 2.0], dt=1.0, n_paths=2, reduce=True)
        print(f"{name}: USABLE", flush=True)
""")


def test_ctrl_c_stops_long_runs_within_a_second_and_the_process_stays_usable():
    """SIGINT 1.5 s into long run_sgd calls (1 and 2 threads, a data model recording every step) and a
    long solve of sgd_sde: KeyboardInterrupt within 1.5 s of the signal, then small runs give the
    same numbers as before."""
    try:
        proc = subprocess.run([sys.executable, "-c", _SIGINT_SCRIPT], capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"a long run was not interrupted; output so far:\n{exc.stdout}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    latencies = {line.split(": LATENCY ")[0]: float(line.split()[-1]) for line in lines if ": LATENCY " in line}
    print(latencies)
    assert len(latencies) == 4 and sum(": USABLE" in line for line in lines) == 4, proc.stdout
    assert max(latencies.values()) < 1.5, latencies
