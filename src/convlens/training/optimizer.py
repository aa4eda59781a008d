"""Adam, stepping every tensor at once, with torch.optim.Adam's numbers and state format.

The same update as ``torch.optim.Adam`` (Kingma and Ba, with L2 weight decay
added to the gradient as torch does), element for element the same
operations, so the weights after any number of steps are bitwise equal to
torch's (tests/test_optimizer.py). It differs in what it costs: each step is
a handful of ``torch._foreach_*`` calls over all parameters instead of a Python
loop over them, and building it does not import torch's compiler (building
``torch.optim.Adam`` imports ``torch._dynamo`` on first use: about 1 s, more
than a selective epoch of the lesson's CNN). Its ``state_dict`` has torch's
layout, so checkpoints written with either resume with either.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class Adam:
    """Adam over one group of parameters; ``param_groups[0]["lr"]`` may change between steps."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = list(params)
        self.param_groups: list[dict[str, Any]] = [
            {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        ]
        self.steps = 0
        self.exp_avgs = [
            torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params
        ]
        self.exp_avg_sqs = [
            torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params
        ]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (set them to None, or to zeros)."""
        for param in self.params:
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        group = self.param_groups[0]
        lr, (beta1, beta2), eps, decay = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        chosen = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not chosen:
            return
        params = [self.params[i] for i in chosen]
        grads = [self.params[i].grad for i in chosen]
        exp_avgs = [self.exp_avgs[i] for i in chosen]
        exp_avg_sqs = [self.exp_avg_sqs[i] for i in chosen]
        self.steps += 1
        if decay != 0:
            grads = torch._foreach_add(grads, params, alpha=decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        step_size = lr / (1 - beta1**self.steps)
        correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominators, correction2_sqrt)
        torch._foreach_add_(denominators, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denominators, -step_size)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Adam's layout: {"state": {i: step, exp_avg, exp_avg_sq}, "param_groups"}."""
        group = self.param_groups[0]
        state = {}  # empty before the first step, as torch's
        if self.steps:
            state = {
                index: {
                    "step": torch.tensor(float(self.steps)),
                    "exp_avg": self.exp_avgs[index].clone(),
                    "exp_avg_sq": self.exp_avg_sqs[index].clone(),
                }
                for index in range(len(self.params))
            }
        settings = {**group, "betas": tuple(group["betas"]), "amsgrad": False, "maximize": False}
        return {
            "state": state,
            "param_groups": [{**settings, "params": list(range(len(self.params)))}],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what state_dict() (or torch.optim.Adam's) returned."""
        group = state_dict["param_groups"][0]
        for key in ("lr", "eps", "weight_decay"):
            self.param_groups[0][key] = group[key]
        self.param_groups[0]["betas"] = tuple(group["betas"])
        states = state_dict["state"]
        steps = {int(float(s["step"])) for s in states.values()}
        if len(steps) > 1:
            raise ValueError("an Adam state whose parameters took different step counts")
        self.steps = steps.pop() if steps else 0
        for index, param in enumerate(self.params):
            saved = states.get(index) or states.get(str(index))
            if saved is None:
                continue
            self.exp_avgs[index] = saved["exp_avg"].to(param.device, param.dtype, copy=True)
            self.exp_avg_sqs[index] = saved["exp_avg_sq"].to(param.device, param.dtype, copy=True)
