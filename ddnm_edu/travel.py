"""Time travel (DDNM+ / RePaint): which steps a run visits, and how many model calls it makes.

After every ``travel_length`` steps the sampler jumps back ``travel_length`` steps and denoises again,
``travel_repeat`` times in all (travel_repeat = 1: no travel) -- RePaint's jump schedule, which the
official DDNM code uses. :func:`travel_schedule` gives the visited step indices, :func:`nfe_count` the
number of model calls; :func:`paper_travel_schedule` is the paper's Algorithm 2 as printed (travel at
every step). The sampler (``sampling.ddnm_plus_steps``) turns the indices into timesteps.
"""

from __future__ import annotations

from .errors import DDNMInputError, check_int_range


def travel_schedule(steps: int, travel_length: int = 1, travel_repeat: int = 1) -> list[int]:
    """Step indices visited, from ``steps - 1`` down to -1 (clean), with RePaint-style jumps back.

    Index i stands for timestep ``NoiseSchedule.timesteps(steps)[::-1][i]``; -1 is clean data.
    A decrease i -> j is a denoising step (one model call); an increase i -> i + 1 is a forward
    (re-noising) step. Same construction as ``get_schedule_jump`` in the RePaint / DDNM code.
    """
    steps = check_int_range(steps, "steps", 1)
    travel_repeat = check_int_range(travel_repeat, "travel_repeat", 1, hint=" Use 1 for no time travel.")
    if travel_repeat > 1:
        travel_length = check_int_range(
            travel_length, "travel_length", 1, max(1, steps - 1), f" It must be smaller than steps={steps}."
        )
        if steps < 2:
            raise DDNMInputError("time travel needs steps >= 2.")
    jumps = {j: travel_repeat - 1 for j in range(0, steps - travel_length, travel_length)} if travel_repeat > 1 else {}
    t, ts = steps, []
    while t >= 1:
        t -= 1
        ts.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(travel_length):
                t += 1
                ts.append(t)
    ts.append(-1)
    return ts


def paper_travel_schedule(steps: int, travel_length: int) -> list[int]:
    """Step indices visited by the DDNM paper's Algorithm 2 as printed, in the same format as :func:`travel_schedule`.

    At *every* step index k (from ``steps - 1`` down to 0) it jumps forward L = min(steps - 1 - k, l),
    x_{k+L} ~ q(x_{k+L} | x_k) (line 4), then denoises L + 1 times down to k - 1 (lines 5-8). So every
    step travels, and NFE = sum_k (min(steps - 1 - k, l) + 1), about (l + 1) x steps. The library's
    :func:`travel_schedule` (RePaint's ``get_schedule_jump``, which the official code uses) travels only
    every ``travel_length`` steps, ``travel_repeat - 1`` times.
    """
    steps = check_int_range(steps, "steps", 1)
    travel_length = check_int_range(travel_length, "travel_length", 0)
    ts, k = [steps - 1], steps - 1
    while k >= 0:
        L = min(steps - 1 - k, travel_length)
        ts.extend(k + u for u in range(1, L + 1))  # re-noise, one level at a time
        ts.extend(k + u for u in range(L - 1, -2, -1))  # denoise back down to k - 1
        k -= 1
    return ts


def nfe_count(steps: int, travel_length: int = 1, travel_repeat: int = 1) -> int:
    """Model calls of a run: steps + travel_length * (travel_repeat - 1) * #jump points."""
    if travel_repeat <= 1:
        return steps
    return steps + travel_length * (travel_repeat - 1) * len(range(0, steps - travel_length, travel_length))
