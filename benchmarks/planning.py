"""Benchmark: one decision-time planning call in the PETS cart-pole setting (CEM
through a probabilistic ensemble with TSinf particles), its FLOP rate against this
machine's large-matmul rate, and how it scales with batch, population and horizon.

    python -m benchmarks.planning [--repeats 20] [--batches 1,16,256] [--batch-population 50]
    python -m benchmarks.planning --json      # one JSON line: the batch-1 PETS call
    python -m benchmarks.planning --quick     # tiny sizes, a smoke test
    python -m benchmarks.planning --no-scaling  # only the batch-1 call

The PETS setting: an ensemble of 5 probabilistic members, three hidden layers of
200 (swish), inputs obs 4 + action 1, known reward and termination (so the
network predicts mean and log-variance of the 4-dim state change); CEM with
horizon 15, population 500, 50 elites, 5 iterations, 20 particles, TSinf.
The model is freshly initialized (random weights, identity normalizer): timing
does not depend on what it has learned.

The whole ``plan`` call is jitted and timed by :func:`mbrl_jax.timing.compile_and_time`:
compile time (``lower().compile()``) is apart from run time; run times are the
median (min, max) of ``--repeats`` calls after warm-ups, each blocked until ready.
FLOPs are counted analytically: 2 in out per Dense layer per row, rows =
population x particles x horizon x iterations (the element-wise work is left
out). XLA's own cost analysis counts each loop body once, not once per trip, so it
is shown but not used. The matmul rates are measured before and after the call and
averaged ("of matmul" divides by that mean). The 1-minute load average is printed (and put in the
JSON): other processes on the machine make the timings noisy. Progress goes to
stderr; tables (or the JSON line) to stdout. (The exploratory ``--profile`` of the
parts of a call, whose figures benchmarks/RESULTS.md records, was removed.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace

import jax
import jax.numpy as jnp

from benchmarks.tables import ints, md_row
from mbrl_jax.envs import ContinuousCartPole, cartpole_reward, cartpole_termination
from mbrl_jax.models import neural_model
from mbrl_jax.planners import cem, plan_batch
from mbrl_jax.timing import compile_and_time, device_description, versions

OBS_SIZE = 4
ACTION_SIZE = 1
DATE = time.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Setting:
    """Sizes of one planning call (defaults: the PETS cart-pole setting)."""

    population: int = 500
    elites: int = 50
    horizon: int = 15
    iterations: int = 5
    particles: int = 20
    ensemble: int = 5
    hidden: tuple[int, ...] = (200, 200, 200)

    @property
    def rows(self) -> int:
        """Network rows (one model step of one particle) evaluated in one call."""
        return self.population * self.particles * self.horizon * self.iterations


QUICK = Setting(population=50, elites=5, horizon=5, iterations=2, particles=5, hidden=(32, 32))


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def layer_sizes(setting: Setting) -> list[tuple[int, int]]:
    """(in, out) of every Dense layer: obs + action in, mean + logvar of obs out."""
    widths = [OBS_SIZE + ACTION_SIZE, *setting.hidden, 2 * OBS_SIZE]
    return list(zip(widths[:-1], widths[1:], strict=True))


def analytic_flops(setting: Setting) -> int:
    """Matmul FLOPs of one call: sum over layers of 2 in out, times the rows."""
    return setting.rows * sum(2 * i * o for i, o in layer_sizes(setting))


def build_model(setting: Setting):
    """The PETS ensemble for the continuous cart-pole, known reward and termination."""
    space = ContinuousCartPole().action_space()
    return neural_model(
        OBS_SIZE,
        space,
        ensemble_size=setting.ensemble,
        hidden=setting.hidden,
        reward_fn=cartpole_reward,
        termination_fn=cartpole_termination,
    )


def build_planner(setting: Setting):
    """CEM over the continuous cart-pole's actions at ``setting``'s sizes."""
    return cem(
        ContinuousCartPole().action_space(),
        horizon=setting.horizon,
        population=setting.population,
        elites=setting.elites,
        iterations=setting.iterations,
        particles=setting.particles,
    )


def build_call(setting: Setting, batch: int | None = None, seed: int = 0, chunk: int | None = None):
    """The jittable planning call ``fn(model_state, planner_state, obs, key)`` and
    its arguments; with ``batch``, B start states, planner states and keys planned
    in one call by :func:`mbrl_jax.planners.plan_batch` (one model shared), all
    vmapped at once or ``chunk`` environments at a time."""
    model = build_model(setting)
    planner = build_planner(setting)
    k_model, k_plan, k_obs, k_call = jax.random.split(jax.random.PRNGKey(seed), 4)

    def one(model_state, planner_state, obs, key):
        return planner.plan(planner_state, model.step_fn(model_state, "tsinf"), obs, key)

    def many(model_state, planner_states, obs, keys):
        step_fn = model.step_fn(model_state, "tsinf")
        return plan_batch(planner, planner_states, step_fn, obs, keys, chunk=chunk)

    model_state = model.init(k_model)
    if batch is None:
        obs = jax.random.uniform(k_obs, (OBS_SIZE,), minval=-0.05, maxval=0.05)
        return one, (model_state, planner.init(k_plan), obs, k_call)
    obs = jax.random.uniform(k_obs, (batch, OBS_SIZE), minval=-0.05, maxval=0.05)
    planner_states = jax.vmap(planner.init)(jax.random.split(k_plan, batch))
    return many, (model_state, planner_states, obs, jax.random.split(k_call, batch))


_MEASURED: dict[tuple, dict] = {}


def measure_call(
    setting: Setting,
    repeats: int,
    warmups: int,
    batch: int | None = None,
    chunk: int | None = None,
) -> dict:
    """Compile and time one (optionally batched) planning call; rates per call. A
    setting already measured (e.g. the PETS call inside a scaling table) is reused."""
    if (setting, batch, chunk) in _MEASURED:
        return _MEASURED[setting, batch, chunk]
    fn, args = build_call(setting, batch, chunk=chunk)
    _, timing, times = compile_and_time(fn, *args, repeats=repeats, warmups=warmups)
    envs = batch or 1
    flops = analytic_flops(setting) * envs
    row = {
        "compile_s": timing.compile_s,
        "median_s": times.median_s,
        "min_s": times.min_s,
        "max_s": times.max_s,
        "batch": envs,
        "flops": flops,
        "xla_flops": None if math.isnan(timing.flops) else timing.flops,
        "model_steps_per_s": setting.rows * envs / times.median_s,
        "gflops_per_s": flops / times.median_s / 1e9,
    }
    _MEASURED[setting, batch, chunk] = row
    return row


def matmul_rate(shape_a: tuple, shape_b: tuple, repeats: int = 7) -> float:
    """GFLOP/s of a float32 (batched) matmul a @ b, median of ``repeats`` calls."""
    ka, kb = jax.random.split(jax.random.PRNGKey(1))
    a = jax.random.normal(ka, shape_a, jnp.float32)
    b = jax.random.normal(kb, shape_b, jnp.float32)
    _, timing, _ = compile_and_time(jnp.matmul, a, b, repeats=repeats, warmups=2)
    return 2 * a.size * shape_b[-1] / timing.run_s / 1e9


def machine_rates(setting: Setting, quick: bool = False) -> dict:
    """Large square matmul and the model's own layer shape (E, rows per member, 200)."""
    n = 512 if quick else 2048
    width = setting.hidden[0]
    per_member = setting.population * setting.particles // setting.ensemble
    e = setting.ensemble
    return {
        "matmul": f"{n}x{n} @ {n}x{n}",
        "matmul_gflops_per_s": matmul_rate((n, n), (n, n)),
        "layer_matmul": f"{e} x ({per_member}x{width} @ {width}x{width})",
        "layer_gflops_per_s": matmul_rate((e, per_member, width), (e, width, width)),
    }


def both_sides(before: dict, after: dict) -> dict:
    """The matmul rates measured before and after the call (the load of a shared
    machine changes within a run): their mean, and both."""
    rates = dict(after)
    for key in ("matmul_gflops_per_s", "layer_gflops_per_s"):
        rates[key] = (before[key] + after[key]) / 2
        rates[f"{key}_before_call"], rates[f"{key}_after_call"] = before[key], after[key]
    return rates


def load() -> float:
    """The 1-minute load average (other processes make the timings noisy). Taken at
    the start it shows what else ran; later it includes this process (up to 2)."""
    return os.getloadavg()[0]


def settings_dict(setting: Setting) -> dict:
    out = asdict(setting)
    out["hidden"] = list(setting.hidden)
    out.update(propagation="tsinf", obs_size=OBS_SIZE, action_size=ACTION_SIZE)
    return out


def json_record(setting: Setting, row: dict, rates: dict, load_start: float) -> dict:
    """The single-call record compared across implementations on one machine."""
    return {
        "benchmark": "pets_cartpole_cem_call",
        **{k: row[k] for k in ("median_s", "min_s", "max_s", "compile_s", "model_steps_per_s")},
        "gflops_per_s": row["gflops_per_s"],
        "flops": row["flops"],
        "flops_counted": "analytic matmul FLOPs: 2*in*out per Dense layer per row",
        "xla_flops": row["xla_flops"],
        "matmul_gflops_per_s": rates["matmul_gflops_per_s"],
        "matmul_gflops_per_s_before_after_call": [
            rates["matmul_gflops_per_s_before_call"],
            rates["matmul_gflops_per_s_after_call"],
        ],
        "matmul": rates["matmul"],
        "fraction_of_matmul": row["gflops_per_s"] / rates["matmul_gflops_per_s"],
        "layer_matmul": rates["layer_matmul"],
        "layer_gflops_per_s": rates["layer_gflops_per_s"],
        "settings": {**settings_dict(setting), "batch": 1},
        "device": device_description(),
        "versions": versions(),
        "date": DATE,
        "load_1min_start": load_start,
        "load_1min_end": load(),
    }


def print_single(setting: Setting, row: dict, rates: dict, repeats: int) -> None:
    """The batch-1 call, FLOPs and the machine's matmul rates."""
    print(f"## One planning call (batch 1), {repeats} calls\n")
    steps = setting.horizon * setting.iterations
    xla = row["xla_flops"]
    xla_text = (
        "not available"
        if not xla
        else (
            f"{xla / 1e9:.2f} G, x {steps} loop trips = {xla * steps / 1e9:.1f} G "
            "(it counts the scan bodies once)"
        )
    )
    print(
        f"Rows per call {setting.rows:,} (population x particles x horizon x iterations); "
        f"analytic matmul FLOPs {row['flops'] / 1e9:.1f} G (reported); "
        f"XLA cost_analysis {xla_text}.\n"
    )
    print("| compile s | median s | min s | max s | model steps/s | GFLOP/s | of matmul |")
    print("|---|---|---|---|---|---|---|")
    fraction = row["gflops_per_s"] / rates["matmul_gflops_per_s"]
    print(
        md_row(
            f"{row['compile_s']:.2f}",
            f"{row['median_s']:.3f}",
            f"{row['min_s']:.3f}",
            f"{row['max_s']:.3f}",
            f"{row['model_steps_per_s']:,.0f}",
            f"{row['gflops_per_s']:.1f}",
            f"{fraction:.0%}",
        )
    )
    print(
        f"\nfloat32 matmul: {rates['matmul']} {rates['matmul_gflops_per_s']:.1f} GFLOP/s "
        f"(mean of {rates['matmul_gflops_per_s_before_call']:.1f} before the call and "
        f"{rates['matmul_gflops_per_s_after_call']:.1f} after); "
        f"{rates['layer_matmul']} {rates['layer_gflops_per_s']:.1f} GFLOP/s.\n"
    )


def batch_table(
    setting: Setting, batches: list[int], single: dict, repeats: int, chunk: int | None = None
) -> list:
    """Planning B environments in one call against B single calls."""
    rows = []
    how = "all vmapped at once" if chunk is None else f"{chunk} at a time (lax.map)"
    print(f"### population {setting.population}, environments {how}\n")
    print("| B | compile s | s per call (median) | ms per env | vs B single calls | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for b in batches:
        log(f"batch {b}, population {setting.population}")
        row = (
            single
            if b == 1 and single
            else measure_call(setting, repeats_for(b, repeats), 1, b, chunk)
        )
        ratio = row["median_s"] / (b * single["median_s"])
        rows.append({**row, "population": setting.population, "ratio_to_b_singles": ratio})
        print(
            md_row(
                b,
                f"{row['compile_s']:.2f}",
                f"{row['median_s']:.3f}",
                f"{1e3 * row['median_s'] / b:.1f}",
                f"{ratio:.2f}",
                f"{row['gflops_per_s']:.1f}",
            ),
            flush=True,
        )
    print()
    return rows


def repeats_for(batch: int, repeats: int) -> int:
    """Fewer repeats for big batches (median of 3)."""
    return repeats if batch < 16 else min(repeats, 3)


def scaling_table(base: Setting, field: str, values: list[int], repeats: int) -> list:
    """Batch-1 call time and model steps/s as one setting varies."""
    print(f"| {field} | compile s | median s | model steps/s | GFLOP/s |")
    print("|---|---|---|---|---|")
    rows = []
    for value in values:
        setting = replace(base, **{field: value})
        if field == "population":
            setting = replace(setting, elites=min(base.elites, value))
        log(f"{field} {value}")
        row = measure_call(setting, repeats, warmups=2)
        rows.append({field: value, **row})
        print(
            md_row(
                value,
                f"{row['compile_s']:.2f}",
                f"{row['median_s']:.3f}",
                f"{row['model_steps_per_s']:,.0f}",
                f"{row['gflops_per_s']:.1f}",
            ),
            flush=True,
        )
    print()
    return rows


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls at batch 1")
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument("--batches", default="1,16,256")
    parser.add_argument(
        "--full-batches", default="1,16", help="batch sizes run at the full population"
    )
    parser.add_argument("--batch-population", type=int, default=50)
    parser.add_argument(
        "--chunk", type=int, default=1, help="environments per vmap in the chunked full batch"
    )
    parser.add_argument("--populations", default="100,250,500,1000")
    parser.add_argument("--horizons", default="5,15,30")
    parser.add_argument("--json", action="store_true", help="only the batch-1 call, one line")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--no-scaling", action="store_true", help="skip the batch, population, horizon tables"
    )
    return parser.parse_args(argv)


def run_tables(args, setting: Setting, single: dict, rates: dict) -> None:
    """Batch scaling, then population and horizon scaling."""
    print("## Batch of environments planned in one call (plan_batch)\n")
    small = replace(setting, population=args.batch_population)
    small = replace(small, elites=min(setting.elites, max(1, args.batch_population // 10)))
    small_single = measure_call(small, args.repeats, args.warmups)
    batch_table(small, ints(args.batches), small_single, args.repeats)
    batch_table(setting, ints(args.full_batches), single, args.repeats)
    batch_table(setting, ints(args.full_batches), single, args.repeats, chunk=args.chunk)
    print("## Scaling with population (batch 1)\n")
    scaling_table(setting, "population", ints(args.populations), max(3, args.repeats // 4))
    print("## Scaling with horizon (batch 1)\n")
    scaling_table(setting, "horizon", ints(args.horizons), max(3, args.repeats // 4))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setting = Setting()
    if args.quick:
        setting = QUICK
        args.repeats, args.warmups = min(args.repeats, 5), 1
        args.batches, args.full_batches, args.batch_population = "1,4", "1", 20
        args.populations, args.horizons = "25,50", "3,5"
    load_start = load()
    log(f"device: {device_description()}; load average (1 min) {load_start:.2f}")
    log("matmul rates, then the batch-1 call, then the matmul rates again")
    before = machine_rates(setting, quick=args.quick)
    single = measure_call(setting, args.repeats, args.warmups)
    rates = both_sides(before, machine_rates(setting, quick=args.quick))
    if args.json:
        print(json.dumps(json_record(setting, single, rates, load_start)))
        return
    print(f"device: {device_description()}; versions: {versions()}; {DATE}")
    print(f"load average (1 min): {load_start:.2f} at the start, {load():.2f} after 1 call\n")
    print(f"settings: {settings_dict(setting)}\n")
    print_single(setting, single, rates, args.repeats)
    if not args.no_scaling:
        run_tables(args, setting, single, rates)
    print(f"load average (1 min) at the end: {load():.2f}")


if __name__ == "__main__":
    main()
