"""The measured H200 calibration suites fit5..fit8 and heldout5..heldout10 (issue 11), from one table:
each suite's case lists are pinned (counts and digest; a held-out suite's digest and seeds are in its
rules file, written before it was measured), it shares no case with the suites measured before it, it
lands in its split, its run is listed in validation/h200_runs.csv and merged row for row, and a held-out
suite's figures are pinned as scored. What is particular to one suite (how it was drawn, its tail
ranges, its seeds) follows the table as that suite's own test. Adding a suite is one SUITES entry (plus
its construction test)."""
import math
import random
from dataclasses import dataclass, field

import pytest

from cosim.calibrate import dataset, heldout4_shapes
from cosim.calibrate import microbench as mb
from cosim.calibrate.suite_digest import suite_cases, suite_digest
from tests.suite_checks import listed_run_rows, suite_shapes

BASE = ("default", "fit3", "fit4", "heldout", "heldout2", "heldout3", "heldout4")


@dataclass(frozen=True)
class Suite:
    name: str
    digest: str
    counts: dict            # suite_cases lengths per section
    run: int | None         # validation/raw_h200_run<run>/ (None: not measured yet)
    rows: int | None        # raw ops rows of that run
    split: str
    disjoint_from: tuple    # earlier suites it shares no case with
    shared: dict = field(default_factory=dict)  # earlier suites it shares cases with, and how many
    rules_seeds: tuple = ()  # held out: seeds the rules file names beside the digest
    distinct: bool = False  # every case a different shape
    fit_rows: int | None = None  # fit suites: rows split fit, where pinned
    figures: dict | None = None  # held out: analytical figures as scored (see test_figures_as_scored)


SUITES = (
    Suite("fit5", "cb855e9ad784e62ccc37e263635c36a9b89b6e26e2f6883a9f9dba5dcc80ab27",
          {"attention": 216, "elementwise": 64, "gemm": 156}, 8, 1241, "fit",
          ("heldout", "heldout2", "heldout3", "heldout4"), distinct=True, fit_rows=1240),
    Suite("fit6", "755e718fc9d1053f8a52850471c520aa0a423ef23eff745dc34c46c2d63d0b5f",
          {"attention": 240, "elementwise": 180, "gemm": 184}, 10, 1493, "fit",
          ("heldout", "heldout2", "heldout3", "heldout4", "heldout5")),
    Suite("fit7", "ca1ee20007a51c849f36c0819058b0d8f50c0c9ddd048d7e251426c9e63dfc61",
          {"attention": 288, "elementwise": 200, "gemm": 240}, 12, 1822, "fit",
          BASE + ("fit5", "fit6", "heldout5", "heldout6")),
    Suite("fit8", "8f82aa7f96c732bc97460f9b16de0d99af0b386b0adca7dc8347443de071dffb",
          {"attention": 276, "elementwise": 240, "gemm": 216}, 14, 1773, "fit",
          BASE + ("fit5", "fit6", "fit7", "heldout5", "heldout6", "heldout7")),
    # heldout5: scored once after the session-7 freeze (7784a71) at 4.7 / 15.9 (met: bf16 GEMM, default and
    # cuDNN prefill; decode 3.3 / 15.3, elementwise 4.1 / 18.4; graph e2e 2.8 / 1.6 / 2.3); since the session-7
    # second round a SEEN suite (re-scored then at 4.9 / 15.7), re-scored with the session-8 third-round model
    # (second round 4.8 / 14.5; the cuDNN decode start fix, justified on fit-split validation, not on these rows:
    # 4.6 / 14.3), and with the session-9 model (e7842fc; its terms chosen on fit-split validation)
    # re-pinned with the round-10 model (round 10, session 18: the measured-residual correction as s19 chose it; a seen
    # suite re-scored, nothing chosen on it): all 4.1 / 13.7 -> 3.6 / 11.6; default decode 3.8 / 12.9 -> 3.0 / 8.7;
    # unchanged: FA2 prefill, elementwise; now met: fp8 GEMM, unfused decode; graph e2e 2.2 / 2.8 / 1.8 -> 2.4 / 2.6 /
    # 2.2
    # re-pinned with the round-11 model (round 11, session 19: HF eager prefill's measured-residual correction compared
    # within the KV length's alignment class, as s20 chose it; a seen suite re-scored, nothing chosen on it): all 3.6 /
    # 11.6 -> 3.5 / 11.2; unfused (HF eager) prefill 6.1 / 22.1 -> 4.8 / 12.5 (now met; pinned here from round 11);
    # every other class and the graph e2e unchanged
    Suite("heldout5", "9342e6c466f574bad993134979293738e7225a879ad1969a5e8a952278fd4afd",
          {"attention": 155, "elementwise": 164, "gemm": 152, "e2e": 2}, 9, 1081, "test5",
          ("heldout", "heldout2", "heldout3", "heldout4"),
          shared={"default": 1, "fit3": 0, "fit4": 0, "fit5": 1},  # rule 2 drops their rows
          rules_seeds=(mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1),
          figures={"n": 1077, "all": (3.5, 10.2),
                   "met": {"elementwise", "all", "attention_decode", "attention_decode_cudnn", "attention_decode_fa2",
                           "attention_decode_unfused", "attention_prefill", "attention_prefill_cudnn",
                           "attention_prefill_fa2", "attention_prefill_unfused", "gemm_bf16", "gemm_fp8"},
                   "pins": {"attention_decode": (3.0, 8.7), "elementwise": (3.6, 10.0),
                            "attention_prefill_fa2": (4.2, 9.2), "attention_prefill_unfused": (4.5, 12.8)},
                   "e2e": {"eager": 2.6, "engine": 2.5, "engine_fused": 1.9}}),
    # heldout6: scored once after the session-7 second-round freeze (5e95801) at 4.4 / 15.7 (met: fp8 GEMM,
    # every prefill but unfused, elementwise; bf16 GEMM 5.4 / 14.0, default decode 4.1 / 22.5, FA2 decode
    # 4.5 / 20.1; graph e2e 2.8 / 1.4 / 2.0); since session 8 a SEEN suite, re-scored with the session-8
    # third-round model (second round 4.4 / 14.6; third 4.2 / 14.3), and with the session-9 model (e7842fc)
    # re-pinned with the round-10 model (round 10, session 18: the measured-residual correction as s19 chose it; a seen
    # suite re-scored, nothing chosen on it): all 3.8 / 12.9 -> 3.1 / 10.8; bf16 GEMM 4.0 / 12.4 -> 2.8 / 9.3; default
    # decode 4.1 / 16.3 -> 2.2 / 11.1; unchanged: FA2 prefill, FA2 decode; now met: default decode, unfused decode;
    # graph e2e 2.8 / 1.4 / 1.5 -> 2.8 / 1.3 / 0.9
    # re-pinned with the round-11 model (round 11, session 19: HF eager prefill's measured-residual correction compared
    # within the KV length's alignment class, as s20 chose it; a seen suite re-scored, nothing chosen on it): all 3.1 /
    # 10.8 -> 3.1 / 10.1; unfused (HF eager) prefill 7.7 / 18.2 -> 4.2 / 11.0 (now met; pinned here from round 11);
    # every other class and the graph e2e unchanged
    Suite("heldout6", "e221b3a0e8b276ef80f0bf33e2c3843fca9b95e2accca03e8c6e08f5a9c2d4a8",
          {"attention": 186, "elementwise": 176, "gemm": 152, "e2e": 2}, 11, 1219, "test6",
          BASE + ("fit5", "fit6", "heldout5"), rules_seeds=(mb.HELDOUT6_SEED,),
          figures={"n": 1215, "all": (3.1, 9.6),
                   "met": {"all", "attention_decode", "attention_decode_cudnn", "attention_decode_fa2",
                           "attention_decode_unfused", "attention_prefill", "attention_prefill_cudnn",
                           "attention_prefill_fa2", "attention_prefill_unfused", "elementwise", "gemm_bf16",
                           "gemm_fp8"},
                   "pins": {"gemm_bf16": (2.8, 9.3), "attention_decode": (2.2, 11.1),
                            "attention_decode_fa2": (3.2, 11.8), "attention_prefill_fa2": (3.7, 8.8),
                            "attention_prefill_unfused": (4.1, 11.0)},
                   "e2e": {"eager": 2.9, "engine": 1.2, "engine_fused": 1.1}}),
    # heldout7: scored once after the session-8 freeze (fdb2a20) at 4.7 / 15.3 (met: bf16 GEMM, default and
    # cuDNN prefill, default decode, FA2 decode; graph e2e 4.0 / 1.9 / 3.2); since the session-8 second round a
    # SEEN suite (its errors chose which classes fit suite 8 measures), re-scored with the second-round model at
    # 5.1 / 15.2, with the third-round model (4.8 / 14.9) and with the session-9 model (e7842fc). Eager graph
    # decode: 3.97 when scored once, 4.003 with the second-round model, 3.71 with the third, 3.23 with session 9.
    # re-pinned with the round-10 model (round 10, session 18: the measured-residual correction as s19 chose it; a seen
    # suite re-scored, nothing chosen on it): all 4.0 / 13.1 -> 3.2 / 11.1; fp8 GEMM 6.0 / 16.6 -> 3.0 / 11.9; cuDNN
    # decode 4.1 / 13.5 -> 3.1 / 11.1; unchanged: FA2 prefill; now met: fp8 GEMM, unfused decode; graph e2e 3.4 / 1.3 /
    # 1.6 -> 3.6 / 1.0 / 1.4
    # re-pinned with the round-11 model (round 11, session 19: HF eager prefill's measured-residual correction compared
    # within the KV length's alignment class, as s20 chose it; a seen suite re-scored, nothing chosen on it): all 3.2 /
    # 11.1 -> 3.1 / 10.9; unfused (HF eager) prefill 6.8 / 14.4 -> 3.4 / 7.1 (now met; pinned here from round 11); every
    # other class and the graph e2e unchanged
    Suite("heldout7", "90aee88dae6d456c504f60f3010f2de50cb46ef6f28abae09fce5b4f195be896",
          {"attention": 222, "elementwise": 176, "gemm": 152, "e2e": 2}, 13, 1363, "test7",
          BASE + ("fit5", "fit6", "fit7", "heldout5", "heldout6"), rules_seeds=(mb.HELDOUT7_SEED,),
          figures={"n": 1358, "all": (3.2, 10.2),
                   "met": {"elementwise", "all", "attention_decode", "attention_decode_cudnn", "attention_decode_fa2",
                           "attention_decode_unfused", "attention_prefill", "attention_prefill_cudnn",
                           "attention_prefill_fa2", "attention_prefill_unfused", "gemm_bf16", "gemm_fp8"},
                   "pins": {"attention_decode_cudnn": (3.1, 11.1), "attention_prefill_fa2": (3.6, 10.5),
                            "gemm_fp8": (3.0, 11.9), "attention_prefill_unfused": (3.4, 6.7)},
                   "e2e": {"eager": 3.6, "engine": 0.7, "engine_fused": 1.8}}),
    # heldout8: scored once after the session-8 second-round freeze (523b183) at 5.1 / 15.9 (met: default and
    # cuDNN prefill, FA2 decode; cuDNN decode 6.2 / 18.8, default decode 6.5 / 19.7; graph e2e 3.1 / 1.4 / 2.5);
    # since the third round a SEEN suite, re-scored with the cuDNN decode start fixed (justified on fit-split
    # validation, validation/model_selection/s8c_fix.md, not on these rows: 4.9 / 14.9), and with the session-9
    # model (e7842fc)
    # re-pinned with the round-10 model (round 10, session 18: the measured-residual correction as s19 chose it; a seen
    # suite re-scored, nothing chosen on it): all 4.2 / 13.5 -> 3.5 / 11.4; bf16 GEMM 4.6 / 14.9 -> 3.4 / 11.3; fp8 GEMM
    # 7.2 / 18.9 -> 4.6 / 12.6; default decode 3.6 / 12.5 -> 3.1 / 9.6; cuDNN decode 3.6 / 12.7 -> 3.0 / 9.6; unfused
    # decode 4.9 / 12.6 -> 3.2 / 9.0; unchanged: FA2 prefill, unfused prefill, elementwise; now met: fp8 GEMM; graph e2e
    # 3.0 / 3.0 / 1.7 -> 3.2 / 2.7 / 2.2
    # re-pinned with the round-11 model (round 11, session 19: HF eager prefill's measured-residual correction compared
    # within the KV length's alignment class, as s20 chose it; a seen suite re-scored, nothing chosen on it): all 3.5 /
    # 11.4 -> 3.4 / 10.8; unfused (HF eager) prefill 9.2 / 17.3 -> 4.2 / 10.9 (now met); every other class and the graph
    # e2e unchanged
    Suite("heldout8", "7c3d8d1acb828a4275515578affef8f13dac8dbf39e955f758404b93a62f633b",
          {"attention": 270, "elementwise": 206, "gemm": 184, "e2e": 2}, 15, 1645, "test8",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7"),
          rules_seeds=(mb.HELDOUT8_SEED,),
          figures={"n": 1642, "all": (3.4, 10.3),
                   "met": {"elementwise", "all", "attention_decode", "attention_decode_cudnn", "attention_decode_fa2",
                           "attention_decode_unfused", "attention_prefill", "attention_prefill_cudnn",
                           "attention_prefill_fa2", "attention_prefill_unfused", "gemm_bf16", "gemm_fp8"},
                   "pins": {"gemm_bf16": (3.4, 11.3), "gemm_fp8": (4.6, 12.6), "attention_decode": (3.1, 9.6),
                            "attention_decode_cudnn": (3.0, 9.6), "attention_prefill_fa2": (4.3, 13.3),
                            "attention_prefill_unfused": (4.0, 9.3), "attention_decode_unfused": (4.0, 10.8),
                            "elementwise": (3.6, 11.3)},
                   "e2e": {"eager": 3.2, "engine": 2.5, "engine_fused": 2.0}}),
    # heldout9: scored once after the session-8 third-round freeze (a6bf9e1; docs/gpu-validation.md,
    # validation/heldout_tables.txt) at 4.8 / 15.4 (met: default and cuDNN prefill, FA2 decode; bf16 GEMM
    # 5.6 / 15.7, fp8 6.3 / 17.9, default decode 4.9 / 15.8, cuDNN decode 5.5 / 16.3, elementwise 4.3 / 19.3;
    # graph e2e 2.8 / 1.5 / 2.8); since session 9 a SEEN suite, re-scored with the session-9 model (e7842fc)
    # re-pinned with the round-10 model (round 10, session 18: the measured-residual correction as s19 chose it; a seen
    # suite re-scored, nothing chosen on it): all 4.0 / 13.3 -> 3.3 / 10.6; bf16 GEMM 4.7 / 12.5 -> 3.4 / 10.2; fp8 GEMM
    # 6.2 / 17.7 -> 4.4 / 13.0; default decode 3.8 / 11.5 -> 2.8 / 9.3; cuDNN decode 3.7 / 11.9 -> 3.1 / 8.7; unfused
    # decode 5.3 / 13.3 -> 3.4 / 8.4; unchanged: FA2 prefill, unfused prefill, elementwise; now met: fp8 GEMM, unfused
    # decode; graph e2e 2.2 / 1.1 / 1.6 -> 2.2 / 1.2 / 1.7
    # re-pinned with the round-11 model (round 11, session 19: HF eager prefill's measured-residual correction compared
    # within the KV length's alignment class, as s20 chose it; a seen suite re-scored, nothing chosen on it): all 3.3 /
    # 10.6 -> 3.3 / 10.2; unfused (HF eager) prefill 6.8 / 17.5 -> 4.7 / 13.8 (now met); every other class and the graph
    # e2e unchanged
    Suite("heldout9", "7cea4503fd4f3c10d7c11bc77847b22b16a0e6ec1b9cab7ecd38390db76f5799",
          {"attention": 270, "elementwise": 206, "gemm": 184, "e2e": 2}, 16, 1649, "test9",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8"),
          rules_seeds=(mb.HELDOUT9_SEED,),
          figures={"n": 1645, "all": (3.2, 9.7),
                   "met": {"elementwise", "all", "attention_decode", "attention_decode_cudnn", "attention_decode_fa2",
                           "attention_decode_unfused", "attention_prefill", "attention_prefill_cudnn",
                           "attention_prefill_fa2", "attention_prefill_unfused", "gemm_bf16", "gemm_fp8"},
                   "pins": {"gemm_bf16": (3.4, 10.2), "gemm_fp8": (4.4, 13.0), "attention_decode": (2.8, 9.3),
                            "attention_decode_cudnn": (3.1, 8.7), "attention_prefill_fa2": (4.8, 12.3),
                            "attention_prefill_unfused": (4.2, 12.9), "attention_decode_unfused": (4.1, 9.1),
                            "elementwise": (2.9, 10.9)},
                   "e2e": {"eager": 2.5, "engine": 1.2, "engine_fused": 1.9}}),
    # heldout10: scored once after the session-9 freeze (e7842fc; docs/gpu-validation.md,
    # validation/heldout_tables.txt); no row excluded (0 spread, 0 seen shapes). Met and missed as published.
    # re-pinned with the round-10 model (round 10, session 18: the measured-residual correction as s19 chose it; a seen
    # suite re-scored, nothing chosen on it): all 4.1 / 13.4 -> 3.3 / 11.3; bf16 GEMM 4.9 / 12.6 -> 3.0 / 10.1; fp8 GEMM
    # 7.3 / 17.0 -> 4.0 / 12.9; default decode 3.7 / 12.4 -> 2.9 / 8.8; cuDNN decode 3.1 / 11.5 -> 2.4 / 9.4; unfused
    # decode 5.2 / 13.6 -> 3.8 / 9.3; unchanged: default prefill, cuDNN prefill, FA2 prefill, FA2 decode, unfused
    # prefill, elementwise; now met: fp8 GEMM, unfused decode; graph e2e 2.5 / 1.3 / 1.2 -> 2.7 / 1.5 / 0.8
    # re-pinned with the round-11 model (round 11, session 19: HF eager prefill's measured-residual correction compared
    # within the KV length's alignment class, as s20 chose it; a seen suite re-scored, nothing chosen on it): all 3.3 /
    # 11.3 -> 3.2 / 10.7; unfused (HF eager) prefill 5.8 / 15.3 -> 4.2 / 11.5 (now met); every other class and the graph
    # e2e unchanged
    Suite("heldout10", "d9a386a98c23008c691aee396563a6ad698fd3a9e9b356a8b1d229be42679885",
          {"attention": 269, "elementwise": 206, "gemm": 184, "e2e": 2}, 17, 1647, "test10",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9"),
          rules_seeds=(mb.HELDOUT10_SEED,),
          figures={"n": 1644, "all": (3.2, 10.7),
                   "met": {"elementwise", "all", "attention_decode", "attention_decode_cudnn", "attention_decode_fa2",
                           "attention_decode_unfused", "attention_prefill", "attention_prefill_cudnn",
                           "attention_prefill_unfused", "gemm_bf16", "gemm_fp8"},
                   "pins": {"gemm_bf16": (3.0, 10.1), "gemm_fp8": (4.0, 12.9), "attention_prefill": (2.1, 6.2),
                            "attention_decode": (2.9, 8.8), "attention_prefill_cudnn": (2.1, 5.9),
                            "attention_decode_cudnn": (2.4, 9.4), "attention_prefill_fa2": (5.3, 17.5),
                            "attention_decode_fa2": (3.3, 8.6), "attention_prefill_unfused": (3.2, 11.1),
                            "attention_decode_unfused": (4.8, 11.5), "elementwise": (3.4, 11.6)},
                   "e2e": {"eager": 2.9, "engine": 1.4, "engine_fused": 0.9}}),
    # heldout11: rules and digest committed with the session-10 freeze, before it is measured
    # (validation/heldout11_rules.md); run and figures filled in after the run, scored once
    Suite("heldout11", "978590610ce1b62255df0de0c5e6e09ac9446f9d904acfce10989138012a4f74",
          {"attention": 268, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test11",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10"),
          rules_seeds=(mb.HELDOUT11_SEED,)),
    # heldout12: drawn in session 11 to replace heldout11 (retired unmeasured when the session-11 model moved
    # its prices); rules and digest committed with the session-11 freeze, before it is measured
    # (validation/heldout12_rules.md); run and figures filled in after the run, scored once
    Suite("heldout12", "39ad150e66bb9ac519c57fb101a50c36624a595e59ca751120192a5bac58c343",
          {"attention": 269, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test12",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11"),
          rules_seeds=(mb.HELDOUT12_SEED,)),
    # heldout13: drawn in session 12 to replace heldout12 (retired unmeasured when round 7's FA2 soft_c moved its
    # FA2 prefill prices); rules and digest committed with the session-12 freeze (4be1a40), before it was measured
    # (validation/heldout13_rules.md); measured in session 13 (run 18) and scored once with the frozen model
    # (validation/heldout_tables.txt): 25 rows meet the spread rule, 0 share a fit shape. Met and missed as published.
    # re-pinned with the round-10 model (round 10, session 18: the measured-residual correction as s19 chose it; a seen
    # suite re-scored, nothing chosen on it): all 4.2 / 14.3 -> 3.5 / 12.1; bf16 GEMM 4.5 / 13.4 -> 2.8 / 9.5; fp8 GEMM
    # 6.8 / 14.2 -> 3.9 / 10.4; default decode 4.4 / 12.9 -> 3.4 / 9.9; cuDNN decode 4.1 / 12.7 -> 3.3 / 9.3; unfused
    # decode 6.1 / 17.6 -> 3.9 / 14.4; unchanged: default prefill, cuDNN prefill, FA2 prefill, FA2 decode, unfused
    # prefill, elementwise; now met: fp8 GEMM, unfused decode; graph e2e 2.8 / 3.1 / 1.7 -> 3.0 / 3.6 / 2.3
    # re-pinned with the round-11 model (round 11, session 19: HF eager prefill's measured-residual correction compared
    # within the KV length's alignment class, as s20 chose it; a seen suite re-scored, nothing chosen on it): all 3.5 /
    # 12.1 -> 3.4 / 11.3; unfused (HF eager) prefill 6.3 / 20.2 -> 3.1 / 12.6 (now met); every other class and the graph
    # e2e unchanged
    Suite("heldout13", "3262171efd3ab2a83389f923e4f908cd275d686ebc66760a84b40d06b1f81b83",
          {"attention": 268, "elementwise": 206, "gemm": 184, "e2e": 2}, 18, 1644, "test13",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12"),
          rules_seeds=(mb.HELDOUT13_SEED,), distinct=True,
          figures={"n": 1641, "all": (3.3, 10.3),
                   "met": {"elementwise", "all", "attention_decode", "attention_decode_cudnn", "attention_decode_fa2",
                           "attention_decode_unfused", "attention_prefill", "attention_prefill_cudnn",
                           "attention_prefill_unfused", "gemm_bf16", "gemm_fp8"},
                   "pins": {"gemm_bf16": (2.8, 9.5), "gemm_fp8": (3.9, 10.4), "attention_prefill": (1.9, 6.8),
                            "attention_decode": (3.4, 9.9), "attention_prefill_cudnn": (2.1, 6.1),
                            "attention_decode_cudnn": (3.3, 9.3), "attention_prefill_fa2": (3.1, 16.3),
                            "attention_decode_fa2": (2.9, 8.7), "attention_prefill_unfused": (2.5, 11.5),
                            "attention_decode_unfused": (4.1, 14.7), "elementwise": (3.7, 11.4)},
                   "e2e": {"eager": 3.0, "engine": 3.4, "engine_fused": 2.0}}),
    # heldout14: drawn in session 15 for the H100 re-fitted on its seven fit suites (validation/heldout14_rules.md),
    # committed with the re-fit before it is measured (on an H100: validation/h100_runs.csv, not the H200 manifest)
    # one of its GEMMs, M 4 x N 4,096 x K 4,096, is in the default GEMM grid the default suite (and the H100's fit4 run)
    # measured: the overlap check did not see that grid until session 31 (tests/suite_checks.DEFAULT_GRID_SUITES); its
    # rows stand as scored, the shared shape disclosed (docs/gpu-validation.md, session 31)
    Suite("heldout14", "a64dbf2e38e91944fdf3133ab3de63d18efeac0b7b481bc8fb47f704eec592e7",
          {"attention": 267, "elementwise": 206, "gemm": 184, "e2e": 2}, 19, 1638, "test14",
          ("fit3", "heldout", "heldout2", "heldout3", "heldout4", "fit5", "fit6", "fit7", "fit8", "heldout5",
           "heldout6", "heldout7", "heldout8", "heldout9", "heldout10", "heldout11", "heldout12", "heldout13"),
          shared={"default": 1, "fit4": 1}, rules_seeds=(mb.HELDOUT14_SEED,), distinct=True),
    # heldout15: drawn in session 18 for the round-9 model (a measured-residual correction per op class,
    # validation/model_selection/s18_residual_candidates.py); rules and digest committed before the freeze and before
    # it is measured (validation/heldout15_rules.md), on the H200 (run h200_run20: run and figures filled in after it)
    # and / or the H100 (run h100_run12, validation/h100_runs.csv)
    Suite("heldout15", "c471ef830ee89294ba624b2378a1c6f99e398ff8ed8392bfec831d5fb79ffbc5",
          {"attention": 269, "elementwise": 206, "gemm": 184, "e2e": 2}, 20, 1643, "test15",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14"),
          rules_seeds=(mb.HELDOUT15_SEED,), distinct=True),
    # heldout16: drawn in session 18 for the round-10 model (round 9's measured-residual correction with the choices of
    # validation/model_selection/s19_residual_candidates.py); rules and digest committed before the freeze and before
    # it is measured (validation/heldout16_rules.md), on the H200 (run h200_run21: run and figures filled in after it)
    # and / or the H100 (run h100_run13, validation/h100_runs.csv)
    Suite("heldout16", "3053cb457cae6e4b44bec5b7639b4983b258342626b9e7062ccf3d28e10ca63a",
          {"attention": 269, "elementwise": 206, "gemm": 184, "e2e": 2}, 21, 1647, "test16",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15"),
          rules_seeds=(mb.HELDOUT16_SEED,), distinct=True),
    # heldout17: drawn in session 19 for the round-11 model (the round-10 model with the choices of
    # validation/model_selection/s20_residual_candidates.py); rules and digest committed before the freeze and before
    # it is measured (validation/heldout17_rules.md), on the H200 (run h200_run22: run and figures filled in after it)
    # and / or the H100 (run h100_run14, validation/h100_runs.csv)
    Suite("heldout17", "01b9cad3ca26ae73f18fa6d97fb440164a26e46a57b61accfaf8f6e2e33d99b9",
          {"attention": 270, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test17",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16"),
          rules_seeds=(mb.HELDOUT17_SEED,), distinct=True),
    # heldout18: drawn in session 20 for the round-12 model (the round-11 model with the choices of
    # validation/model_selection/s23_row_iters.py), re-frozen in session 21 for round 13 (s24_ew_dispatch.py) before
    # any of its data existed; rules and digest committed before the freeze and before it is
    # measured (validation/heldout18_rules.md), on the H200 (run h200_run23: run and figures filled in after it) and / or
    # the H100 (run h100_run15, validation/h100_runs.csv)
    Suite("heldout18", "1d7c20473ec90c2db68d225ea396fb30bf12cfce54dc9d19443a840072b26283",
          {"attention": 270, "elementwise": 206, "gemm": 184, "e2e": 2}, 23, 1650, "test18",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17"),
          rules_seeds=(mb.HELDOUT18_SEED,), distinct=True,
          # scored once with round 13 (frozen at 46901c5), session 22, at f6e5ad9 (validation/heldout_tables.txt)
          figures={"n": 1647, "all": (3.4, 10.4),
                   "met": {"elementwise", "all", "attention_decode", "attention_decode_cudnn", "attention_decode_fa2",
                           "attention_decode_unfused", "attention_prefill", "attention_prefill_cudnn",
                           "attention_prefill_unfused", "gemm_bf16", "gemm_fp8"},
                   "pins": {"gemm_bf16": (3.1, 10.7), "gemm_fp8": (4.6, 13.9), "attention_prefill": (1.9, 6.0),
                            "attention_decode": (3.6, 9.0), "attention_prefill_cudnn": (1.8, 6.8),
                            "attention_decode_cudnn": (3.1, 9.5), "attention_prefill_fa2": (3.7, 17.1),
                            "attention_decode_fa2": (3.2, 8.2), "attention_prefill_unfused": (4.5, 10.1),
                            "attention_decode_unfused": (4.0, 10.0), "elementwise": (3.6, 13.2)},
                   "e2e": {"eager": 3.2, "engine": 1.3, "engine_fused": 1.9}}),
    # heldout19: drawn in session 23 for the round-14 model (the round-13 model with the choices of
    # validation/model_selection/s25_graph_terms.py); rules and digest committed before the freeze and before it is
    # measured (validation/heldout19_rules.md), on the H200 (run h200_run24: run and figures filled in after it) and / or
    # the H100 (run h100_run16, validation/h100_runs.csv)
    Suite("heldout19", "ed826cfa5b0aad99156dc7faa6f3f1a0aea00369738ddf89b41f46050daf626f",
          {"attention": 270, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test19",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18"),
          rules_seeds=(mb.HELDOUT19_SEED,), distinct=True),
    # fit9: session 24, the two classes heldout19's H100 draw missed on the p90 (FA2 one/two-wave causal prefill,
    # few-tile long-K GEMMs); measured on the H100 only (run h100_run17, validation/h100_runs.csv: test_fit9_listed)
    Suite("fit9", "7958fb5e5a93d8e68ee21974f6efa55c8cfa31e3b30ad5999411e9ce5c4e8ccf",
          {"attention": 160, "elementwise": 0, "gemm": 120}, None, None, "fit",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19"), distinct=True),
    # heldout20: drawn in session 24 for the round-15 model (round 14 with the H100 re-fitted on its fit rows plus fit
    # suite 9 and the choices of validation/model_selection/s26_fit9_residuals.py); rules and digest committed before
    # the freeze and before it is measured (validation/heldout20_rules.md), on the H200 (run h200_run25: run and figures
    # filled in after it) and / or the H100 (run h100_run18, validation/h100_runs.csv)
    Suite("heldout20", "e6099eb5c834eb0aa82ef77428e59ea153405afd2fcd6b48bbedab1830e16c40",
          {"attention": 270, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test20",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19", "fit9"),
          rules_seeds=(mb.HELDOUT20_SEED,), distinct=True),
    # fit10: session 24, after heldout20 on the H100: FA2-class prefill (causal and non-causal, one to three waves),
    # the class heldout20's H100 draw missed on the p90; measured on the H100 only (run h100_run19: test_fit10_listed)
    Suite("fit10", "8aa3ba63f5cbfed8d4323887b3a5fa679f1d297cccb722dc382c4758fc6421e1",
          {"attention": 240, "elementwise": 0}, None, None, "fit",
          BASE + ("fit5", "fit6", "fit7", "fit8", "fit9", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19", "heldout20"), distinct=True),
    # heldout21: drawn in session 24 for the round-16 model (round 15 with the H100 re-fitted on its fit rows plus fit
    # suite 10; validation/model_selection/s28_fa2_waves_fit10.py chose no FA2 prefill term); rules and digest committed
    # before the freeze and before it is measured (validation/heldout21_rules.md), on the H200 (run h200_run26: run and
    # figures filled in after it) and / or the H100 (run h100_run20, validation/h100_runs.csv)
    Suite("heldout21", "90c01cb9afff30c7a0bc9212ad6eedb59ad24002646fb1eb06492a0ba54b62d2",
          {"attention": 269, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test21",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10"),
          rules_seeds=(mb.HELDOUT21_SEED,), distinct=True),
    # heldout22: drawn in session 24 for the round-17 model (round 16 with the H100's measured-residual classes
    # re-chosen by validation/model_selection/s29_fit10_residuals.py and its residual table rebuilt); rules and digest
    # committed before the freeze and before it is measured (validation/heldout22_rules.md), on the H200 (run
    # h200_run27: run and figures filled in after it) and / or the H100 (run h100_run21, validation/h100_runs.csv)
    Suite("heldout22", "31d3477307bf6dd437b09887ca9028b2e98cc70791a6215532401aa18ff7d15a",
          {"attention": 270, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test22",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21"),
          rules_seeds=(mb.HELDOUT22_SEED,), distinct=True),
    # heldout23: drawn in session 26 for the round-18 model (round 17 with the H100's FA2-pinned prefill priced as the
    # kernel FlashAttention-2 runs, validation/model_selection/s33_fa2_kernels.py's GMS, and re-fitted); rules and
    # digest committed before the freeze and before it is measured (validation/heldout23_rules.md), on the H200 (run
    # h200_run28: run and figures filled in after it) and / or the H100 (run h100_run22, validation/h100_runs.csv)
    Suite("heldout23", "86e3f98aeb1dd9e2376a0402f7b55a4908ff2cdecb74a914055d90c993c341b6",
          {"attention": 268, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test23",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21", "heldout22"),
          rules_seeds=(mb.HELDOUT23_SEED,), distinct=True),
    # heldout24: drawn in session 27 for the round-19 model (round 18 with the H200's FA2-pinned prefill priced with
    # round 18's form, validation/model_selection/s35_h200_fa2_kernels.py's K, the H200 re-fitted); rules and digest
    # committed before the freeze and before it is measured (validation/heldout24_rules.md), on the H200 (run
    # h200_run29) and / or the H100 (run h100_run23, validation/h100_runs.csv)
    Suite("heldout24", "137be0987fda0f0cbf83619eb6c6f6c1c1e6a34d672f26632b12921ffa0d5f3a",
          {"attention": 270, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test24",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21", "heldout22",
                  "heldout23"),
          rules_seeds=(mb.HELDOUT24_SEED,), distinct=True),
    # fit11: session 31, fresh GEMM rows from the held-out GEMM distribution for the next GEMM round's validation
    # (validation/fit11_rules.md); measured on the H100 (run h100_run24) and merged only when that round re-fits
    Suite("fit11", "71c43bfe57a44aa8286baf12175b27f8d6593cb5e4c40cb14ecea8444798b705",
          {"attention": 0, "elementwise": 0, "gemm": 1103}, None, None, "fit",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21", "heldout22",
                  "heldout23", "heldout24"), distinct=True),
    # fit12: session 32, fit11's construction at fresh seeds, round 22's validation rows (fit11 is fitted there;
    # validation/fit12_rules.md); measured on the H100 (run h100_run25)
    Suite("fit12", "bc0eceb2fd50d25abe45ca708573a2d150eebaef733421075df468cab45add94",
          {"attention": 0, "elementwise": 0, "gemm": 1471}, None, None, "fit",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21", "heldout22",
                  "heldout23", "heldout24", "fit11"), distinct=True),
    # heldout25: drawn in session 32 for the round-22 model (the H100's GEMM tiles from the nvjet menus, s38's F, the
    # H100 re-fitted with fit11 and fit12); rules and digest committed before it is measured
    # (validation/heldout25_rules.md), on the H100 (run h100_run26) and / or the H200 (run h200_run30)
    Suite("heldout25", "2d141d34805a5b31ce7120d113b14b9b98997c8267ffc69fb740b90583095256",
          {"attention": 270, "elementwise": 206, "gemm": 184, "e2e": 2}, None, None, "test25",
          BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
                  "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                  "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21", "heldout22",
                  "heldout23", "heldout24", "fit11", "fit12"),
          rules_seeds=(mb.HELDOUT25_SEED,), distinct=True),
)
HELD_OUT = [s for s in SUITES if s.figures]


def _ids(suites):
    return [s.name for s in suites]


@pytest.mark.parametrize("s", SUITES, ids=_ids(SUITES))
def test_case_lists_are_pinned(s):
    assert {k: len(v) for k, v in suite_cases(s.name).items()} == s.counts
    assert suite_digest(s.name) == s.digest
    if s.split != "fit":  # pinned in the rules file before the suite was measured
        text = open(f"validation/{s.name}_rules.md").read()
        assert s.digest in text and all(str(seed) in text for seed in s.rules_seeds)


@pytest.mark.parametrize("s", SUITES, ids=_ids(SUITES))
def test_shares_no_case_with_earlier_suites(s):
    shapes = suite_shapes(s.name)
    for v in s.disjoint_from:
        assert not shapes & suite_shapes(v), v
    assert {v: len(shapes & suite_shapes(v)) for v in s.shared} == s.shared
    if s.distinct:  # no duplicate cases either
        assert len(shapes) == sum(n for k, n in s.counts.items() if k != "e2e")


def test_overlap_check_sees_a_shared_shape():
    # the check above can fail: heldout4's first GEMM, as a suite would list it, is found
    m, n, k = suite_cases("heldout4")["gemm"][0]
    assert ("gemm", m, n, k) in suite_shapes("heldout4")


@pytest.mark.parametrize("s", SUITES, ids=_ids(SUITES))
def test_lands_in_its_split(s):
    assert dataset.split_of({"suite": s.name, "impl": "F.linear"}) == s.split


@pytest.mark.parametrize("s", SUITES, ids=_ids(SUITES))
def test_run_is_listed_with_its_rows_and_split(s):
    """Run <run> listed in validation/h200_runs.csv as suite <name> (run h200_run<run>): its row count, every
    row tagged with its run (not a content check: see tests/suite_checks.py); a fit suite is fitted (split fit,
    except the fast-accumulation fp8 rows), a held-out one never. A suite not measured yet (run None) is
    listed nowhere and has no row."""
    if s.run is None:
        assert s.name not in {su for _, su, _ in dataset.manifest_runs("validation/h200_runs.csv")}
        assert not [r for _, _, r in dataset.merged_rows("validation/h200_runs.csv")[1] if r["suite"] == s.name]
        return
    assert (f"h200_run{s.run}", s.name) in {(r, su) for r, su, _ in dataset.manifest_runs("validation/h200_runs.csv")}
    merged = listed_run_rows(s.run, s.name, s.rows)
    splits = [dataset.split_of(r) for r in merged]
    if s.split == "fit":
        assert splits.count("other") == sum("fast_accum" in r["impl"] for r in merged)
        assert "test" not in "".join(splits)
        if s.fit_rows is not None:
            assert splits.count("fit") == s.fit_rows
    else:
        assert set(splits) <= {s.split, "other"}


@pytest.mark.parametrize("s", HELD_OUT, ids=_ids(HELD_OUT))
def test_figures_as_scored(s):
    """Pinned as scored (the history of each suite's figures is beside its SUITES entry), so that any later
    change that moves them is seen. Every seen suite's pins are the round-13 model's (round 11's were frozen 4e120b3
    for heldout17; re-pinned after the freeze, nothing chosen on them: validation/heldout_tables.txt has every
    class); round 10's (frozen 03f428a for heldout16) are in the history below; before round 10 they were the
    session-12 model's (frozen 4be1a40 for heldout13; docs/gpu-validation.md
    has the figures they replace). Round 7's FA2 soft_c moved only FA2 prefill and
    all: session-11 model -> session-12, all / FA2 prefill (median / p90): heldout5 4.2 / 13.8 -> 4.1 / 13.7,
    7.0 / 12.4 -> 4.2 / 12.1 (now met); heldout6 3.8 / 12.9 (unchanged), 4.0 / 10.0 -> 3.2 / 8.7; heldout7
    4.1 / 13.1 -> 4.0 / 13.1, 4.5 / 11.7 -> 2.6 / 10.5; heldout8 4.3 / 13.3 -> 4.2 / 13.5, 6.6 / 13.3 -> 4.2 / 13.9
    (now met); heldout9 4.1 / 13.2 -> 4.0 / 13.3, 6.2 / 13.2 -> 4.7 / 13.6 (now met); heldout10 4.2 / 13.5 ->
    4.1 / 13.4, 6.2 / 14.6 -> 5.6 / 13.8. Round 10 (session 18: the measured-residual correction as s19 chose
    it; a seen suite re-scored, nothing chosen on it) leaves every prefill class, FA2 decode and elementwise as the
    session-12 model had them (no H200 correction for them) and moves the GEMMs and the other decodes:
    session-12 model -> round 10, all (median / p90): heldout5 4.1 / 13.7 -> 3.6 / 11.6, heldout6 3.8 / 12.9 ->
    3.1 / 10.8, heldout7 4.0 / 13.1 -> 3.2 / 11.1, heldout8 4.2 / 13.5 -> 3.5 / 11.4, heldout9 4.0 / 13.3 ->
    3.3 / 10.6, heldout10 4.1 / 13.4 -> 3.3 / 11.3, heldout13 4.2 / 14.3 -> 3.5 / 12.1; fp8 GEMM now met on every
    one of them, unfused decode on all but heldout8 (met there before), default decode too on heldout6. Round 9
    (frozen fe59c04, never pinned here) scored them 3.5 / 11.1, 3.0 / 10.0, 3.0 / 10.8, 3.3 / 11.2, 3.2 / 10.2,
    3.2 / 10.7, 3.5 / 11.4, with elementwise met on every one; round 10 has no H200 elementwise correction, so
    elementwise is as the session-12 model had it (missed on all but heldout6, p90 15.4 to 19.3). Round 11
    (session 19: HF eager prefill's measured-residual correction compared within the KV length's alignment
    class, as s20 chose it on fit rows; a seen suite re-scored, nothing chosen on it) moves HF eager (unfused)
    prefill alone, now met on every one of them: round 10 -> round 11, unfused prefill / all (median / p90):
    heldout5 6.1 / 22.1 -> 4.8 / 12.5, 3.6 / 11.6 -> 3.5 / 11.2; heldout6 7.7 / 18.2 -> 4.2 / 11.0,
    3.1 / 10.8 -> 3.1 / 10.1; heldout7 6.8 / 14.4 -> 3.4 / 7.1, 3.2 / 11.1 -> 3.1 / 10.9; heldout8
    9.2 / 17.3 -> 4.2 / 10.9, 3.5 / 11.4 -> 3.4 / 10.8; heldout9 6.8 / 17.5 -> 4.7 / 13.8, 3.3 / 10.6 ->
    3.3 / 10.2; heldout10 5.8 / 15.3 -> 4.2 / 11.5, 3.3 / 11.3 -> 3.2 / 10.7; heldout13 6.3 / 20.2 ->
    3.1 / 12.6, 3.5 / 12.1 -> 3.4 / 11.3; every other class and the graph e2e as round 10 had them. Round 13
    (session 21: the elementwise dispatch terms s24 chose on fit rows, both calibrations re-fitted; a seen suite
    re-scored, nothing chosen on it) moves elementwise, now met on every one of them, HF eager attention (its softmax
    and casts are elementwise parts) and the graph e2e a little: round 11 -> round 13, elementwise / all (median /
    p90): heldout5 3.9 / 17.6 -> 3.6 / 10.0, 3.5 / 11.2 -> 3.5 / 10.4; heldout6 (met before) 3.1 / 10.1 -> 3.0 / 9.7;
    heldout7 3.1 / 10.9 -> 3.1 / 10.0; heldout8 4.6 / 17.1 -> 3.6 / 11.3, 3.4 / 10.8 -> 3.4 / 10.5; heldout9 4.3 /
    19.3 -> 2.9 / 10.9, 3.3 / 10.2 -> 3.2 / 9.8; heldout10 4.4 / 17.4 -> 3.4 / 11.6, 3.2 / 10.7 (unchanged);
    heldout13 4.4 / 18.5 -> 3.7 / 11.4, 3.4 / 11.3 -> 3.3 / 10.6. Round 19 (session 27: round 18's FA2 prefill form
    chosen on the H200's fit rows by s35_h200_fa2_kernels, the H200 re-fitted; a seen suite re-scored, nothing chosen on
    it) moves FA2-pinned prefill and, through it, all: round 13 -> round 19, FA2 prefill / all (median / p90): heldout5
    4.2 / 12.1 -> 4.2 / 9.2, 3.5 / 10.4 -> 3.5 / 10.2; heldout6 3.2 / 8.7 -> 3.7 / 8.8, 3.0 / 9.7 -> 3.1 / 9.6;
    heldout7 2.6 / 10.5 -> 3.6 / 10.5, 3.1 / 10.0 -> 3.2 / 10.2; heldout8 4.2 / 13.9 -> 4.3 / 13.3, 3.4 / 10.5 -> 3.4 /
    10.3; heldout9 4.7 / 13.6 -> 4.8 / 12.3, 3.2 / 9.8 -> 3.2 / 9.7; heldout10 5.6 / 13.8 -> 5.3 / 17.5, all unchanged;
    heldout13 4.9 / 17.4 -> 3.1 / 16.3, 3.3 / 10.6 -> 3.3 / 10.3; heldout18 5.1 / 13.1 -> 3.7 / 17.1, 3.4 / 10.5 ->
    3.4 / 10.4; no class's met / missed changes. Every pin here is round 19's (round 13's elsewhere)."""
    from cosim.validate import ape, summarize, validate
    f = s.figures
    res = validate("h200", "validation/h200_runs.csv", split=s.split, include_unreliable=True)
    a = {k: v["analytical"] for k, v in res.classes.items()}
    assert a["all"]["n"] == f["n"]
    assert (round(a["all"]["median"], 1), round(a["all"]["p90"], 1)) == f["all"]
    met = {k for k, v in a.items() if v["n"] and v["median"] <= 5.0 and v["p90"] <= 15.0}
    assert met == f["met"]
    for cls, want in f["pins"].items():
        assert (round(a[cls]["median"], 1), round(a[cls]["p90"], 1)) == want, cls
    for fusion, want in f["e2e"].items():
        g = [r for r in res.e2e if r["mode"] == "graph" and r["fusion"] == fusion]
        m = summarize(ape([r["analytical_s"] for r in g], [r["measured_s"] for r in g]))
        assert m["n"] == 20 and round(m["median"], 1) == want and m["median"] <= 4.0, (fusion, m)


# ---- what is particular to one suite: how it was drawn, its seeds, its tail ranges ----

def test_fit5_draws_follow_the_stated_ranges():
    c = suite_cases("fit5")
    bands = mb.FIT5_M_BANDS
    tile = [x for x in c["gemm"] if x[0] > 64]
    small = [x for x in c["gemm"] if x[0] <= 64]
    assert len(tile) == 108 and len(small) == 48
    assert all(any(lo <= m <= hi for lo, hi in bands) for m, _, _ in tile)
    assert all(n % 128 == 0 and k % 128 == 0 and 1024 <= n <= 32768 and n * k <= 2 ** 28 for _, n, k in tile)
    assert all(16384 <= k <= 32768 and n * k <= 2 ** 28 for _, n, k in small)
    pre = [x for x in c["attention"] if x[0] == "prefill"]
    dec = [x for x in c["attention"] if x[0] == "decode"]
    assert len(pre) == 42 and all(200 <= L <= 500 and causal and 1 <= b <= 4 for _, b, _, _, _, L, _, causal in pre)
    assert {(h, kvh) for _, _, h, kvh, *_ in dec} == set(mb.FIT5_DECODE_LAYOUTS)
    assert all(2 * b * kvh * ctx * 128 * 2 <= 8e9 and 128 <= ctx <= 32768 for _, b, _, kvh, _, _, ctx, _ in dec)
    assert sum(ctx % 8 != 0 for *_, ctx, _ in dec) >= 40  # unaligned contexts present (unfused bmm)
    emb = [(cols, sz) for kind, cols, sz in c["elementwise"] if kind == "embedding"]
    soft = [(cols, sz) for kind, cols, sz in c["elementwise"] if kind == "softmax"]
    assert len(emb) == 32 and all(1 <= sz // 2 // cols <= 32 for cols, sz in emb)
    assert len(soft) == 32 and all(10000 <= cols <= 16384 and 2 ** 16 - 2 <= sz <= 2 ** 30 for cols, sz in soft)


def test_fit5_tail_table_is_the_committed_one():
    """The per-tail figures in docs/gpu-validation.md come from validation/fit5_tails.txt, which is
    the current model on the raw run-8 rows."""
    from pathlib import Path

    from tests.script_loader import load_script
    mod = load_script("validation/fit5_tails.py", "fit5_tails")
    groups = mod.rows()
    assert sum(len(v) for v in groups.values()) == 1240  # 1241 rows less the one fast-accum fp8 row
    assert mod.table(groups) == Path("validation/fit5_tails.txt").read_text()


def test_fit6_seed_is_no_held_out_seed():
    held_seeds = {heldout4_shapes.HELDOUT4_SEED, mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1}
    assert not {mb.FIT6_SEED, mb.FIT6_SEED + 1} & held_seeds


def test_fit6_draws_follow_the_stated_ranges():
    c = suite_cases("fit6")
    pre = [x for x in c["attention"][120:] if x[0] == "prefill"]
    dec = [x for x in c["attention"][120:] if x[0] == "decode"]
    assert len(pre) == 48 and all(L % 128 and 129 <= L <= 4000 and causal and b * L <= 24576
                                  for _, b, _, _, _, L, _, causal in pre)
    short, long_ = dec[:48], dec[48:]
    assert len(long_) == 24 and all(128 <= ctx <= 1024 and 1 <= b <= 128 for _, b, *_, ctx, _ in short)
    assert all(4096 <= ctx <= 32768 and 1 <= b <= 8 for _, b, *_, ctx, _ in long_)
    soft = [cols for kind, cols, _ in c["elementwise"][140:]]
    assert len(soft) == 40 and all(8192 <= w <= 32768 for w in soft)


def test_fit7_seeds_are_no_held_out_seed():
    held = {heldout4_shapes.HELDOUT4_SEED, mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1, mb.HELDOUT6_SEED,
            mb.HELDOUT6_SEED + 1, mb.HELDOUT6_SEED + 2}
    assert not {mb.FIT7_SEED, mb.FIT7_SEED + 1, mb.FIT7_SEED + 2} & held


def test_fit7_decode_grid_follows_the_stated_ranges():
    dec = [x for x in suite_cases("fit7")["attention"][144:] if x[0] == "decode"]
    short, long_ = dec[:96], dec[96:]
    assert len(long_) == 48
    assert all(128 <= ctx <= 2048 and 1 <= b <= 128 for _, b, *_, ctx, _ in short)
    assert all(2048 <= ctx <= 32768 and 1 <= b <= 32 for _, b, *_, ctx, _ in long_)
    assert all(kvh in mb.FIT7_DECODE_KVH and 8 <= h <= 64 and h % kvh == 0 for _, _, h, kvh, *_ in dec)
    mqa = [x for x in dec if x[3] == 1]
    assert len(mqa) >= 40  # MQA is weighted (3 of 7 KV-head choices)


def test_fit8_seeds_are_no_held_out_seed():
    held = {heldout4_shapes.HELDOUT4_SEED, mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1}
    held |= {s + i for s in (mb.HELDOUT6_SEED, mb.HELDOUT7_SEED) for i in range(4)}
    assert not {mb.FIT8_SEED, mb.FIT8_SEED + 1} & held


def test_fit8_tails_follow_the_stated_ranges():
    c = suite_cases("fit8")
    pre = [x for x in c["attention"][120:] if x[0] == "prefill"]
    dec = [x for x in c["attention"][120:] if x[0] == "decode"]
    assert len(pre) == 60 and len(dec) == 96
    # one or two waves of FA2 CTAs (128-row query blocks over 132 SMs), every fourth length a multiple of 64
    assert all(129 <= L <= 1024 and causal and b * h * math.ceil(L / 128) <= 264 for _, b, h, _, _, L, _, causal in pre)
    assert all(L % 64 == 0 for _, _, _, _, _, L, _, _ in pre[3::4])
    assert all(h // kvh in (2, 4, 8) and 8 <= h <= 64 for _, _, h, kvh, *_ in dec)
    assert all(128 <= ctx <= 2048 and 1 <= b <= 128 for _, b, *_, ctx, _ in dec[:72])
    assert all(2048 <= ctx <= 32768 and 1 <= b <= 32 for _, b, *_, ctx, _ in dec[72:])
    tails = mb._fit8_gemm(random.Random(mb.FIT8_SEED + 1))
    assert set(tails) <= set(c["gemm"]) and len(tails) == 96
    assert all(40 <= m <= 320 and 4096 <= k <= 28672 for m, _, k in tails[:60])
    assert all(480 <= m <= 1150 and k >= 10240 for m, _, k in tails[60:])
    assert {kind for kind, *_ in c["elementwise"][140:]} <= set(mb.FIT8_EW_KINDS)


def test_fit9_follows_the_stated_ranges():
    c = suite_cases("fit9")
    pre, gemm = c["attention"], c["gemm"]
    assert all(x[0] == "prefill" and x[7] and 129 <= x[5] == x[6] <= 1024 and 1 <= x[1] <= 4 for x in pre)
    for i, (_, b, h, kvh, d, L, _, _) in enumerate(pre):
        assert d == (64 if i % 2 else 128) and h % kvh == 0
        ctas = b * h * math.ceil(L / 128)  # 128-row query blocks over an H100's / H200's 132 SMs
        assert (1 <= ctas <= 132) if (i // 8) % 2 == 0 else (133 <= ctas <= 264)
        assert L % 128 == 0 or i % 8 < 6  # the last two of each eight: the even kernel
    assert all(160 <= m <= 1150 and 1024 <= n <= 3072 and 8192 <= k <= 28672 for m, n, k in gemm)
    assert sum(m < 480 for m, _, _ in gemm) == 40


def test_fit10_follows_the_stated_ranges():
    pre = suite_cases("fit10")["attention"]
    assert len(pre) == 240 and all(x[0] == "prefill" and 65 <= x[5] == x[6] <= 1024 and 1 <= x[1] <= 4 for x in pre)
    for i, (_, b, h, kvh, d, L, _, causal) in enumerate(pre):
        assert d == (64 if i % 2 else 128) and h % kvh == 0 and causal == ((i // 2) % 4 != 3)
        lo, hi = ((1, 132), (133, 264), (265, 396))[(i // 6) % 3]  # 128-row query blocks over 132 SMs
        assert lo <= b * h * math.ceil(L / 128) <= hi
        assert L % 128 == 0 or i % 5 != 4


def test_fit11_is_the_gemm_part_of_heldout8_draws_at_its_seeds_less_every_earlier_shape():
    """The held-out GEMM distribution itself (so round 21's validation rows look like what the goal is scored on):
    each draw's 184 GEMMs (the held-out-4 draw's 120, fit5's 32 and fit8's 32 tails), shapes an earlier suite measured
    or an earlier draw holds left out; seeds on a base above every held-out seed, 10 apart (a draw uses 5
    generators)."""
    drawn = [c for seed in mb.FIT11_SEEDS for c in mb._heldout8_draw(seed)[0]["gemm_mnk"]]
    assert len(drawn) == 6 * 184
    gemm = [tuple(c) for c in suite_cases("fit11")["gemm"]]
    left_out = set(drawn) - set(gemm)
    assert set(gemm) <= set(drawn) and len(set(drawn)) == 1104 and len(left_out) == 1  # one shape an earlier suite has
    assert any(("gemm",) + c in suite_shapes(v) for c in left_out for v in mb.GEMM_SUITES if v != "fit11")
    assert min(mb.FIT11_SEEDS) > mb.HELDOUT24_SEED + 4 and all(b - a == 10 for a, b in zip(mb.FIT11_SEEDS,
                                                                                          mb.FIT11_SEEDS[1:]))
    assert sum(m <= 64 for m, _, _ in gemm) == 421 and sum(m >= 1024 for m, _, _ in gemm) == 207
    assert suite_digest("fit11") in open("validation/fit11_rules.md").read()  # rules written before the run


def test_fit12_is_fit11s_construction_at_eight_fresh_seeds_less_every_earlier_shape():
    """Round 22's validation rows: the held-out GEMM distribution again, fit11's shapes among those left out."""
    drawn = [c for seed in mb.FIT12_SEEDS for c in mb._heldout8_draw(seed)[0]["gemm_mnk"]]
    assert len(drawn) == 8 * 184 and len(set(drawn)) == 1472
    gemm = [tuple(c) for c in suite_cases("fit12")["gemm"]]
    assert set(gemm) <= set(drawn) and len(gemm) == 1471
    assert not set(gemm) & {tuple(c) for c in suite_cases("fit11")["gemm"]}
    assert min(mb.FIT12_SEEDS) > max(mb.FIT11_SEEDS) + 4 and all(b - a == 10 for a, b in zip(mb.FIT12_SEEDS,
                                                                                            mb.FIT12_SEEDS[1:]))
    assert sum(m <= 64 for m, _, _ in gemm) == 538 and sum(m >= 1024 for m, _, _ in gemm) == 279
    assert suite_digest("fit12") in open("validation/fit12_rules.md").read()  # rules written before the run


def test_fit10_listed():
    """fit10's one run, h100_run19, merged row for row into the H100 manifest as fit rows."""
    import csv
    with open("validation/raw_h100_run19/ops.csv", newline="") as f:
        raw = list(csv.DictReader(f))
    merged = [r for _, _, r in dataset.merged_rows("validation/h100_runs.csv")[1] if r["suite"] == "fit10"]
    assert len(raw) == len(merged) == 960
    assert all(r["run"] == "h100_run19" and {k: r[k] for k in raw[0]} == q for r, q in zip(merged, raw))
    assert {dataset.split_of(r) for r in merged} == {"fit"}


def test_fit9_listed():
    """fit9's one run, h100_run17, merged row for row into the H100 manifest as fit rows."""
    import csv
    with open("validation/raw_h100_run17/ops.csv", newline="") as f:
        raw = list(csv.DictReader(f))
    merged = [r for _, _, r in dataset.merged_rows("validation/h100_runs.csv")[1] if r["suite"] == "fit9"]
    assert len(raw) == len(merged) == 880
    assert all(r["run"] == "h100_run17" and {k: r[k] for k in raw[0]} == q for r, q in zip(merged, raw))
    assert {dataset.split_of(r) for r in merged} == {"fit"}


def test_heldout5_is_heldout4s_draw_with_a_new_seed_plus_the_fit5_tail_functions():
    gemm, attn, ew, dec, pre = heldout4_shapes._draw(mb.HELDOUT5_SEED)
    rng = random.Random(mb.HELDOUT5_SEED + 1)
    tg, ta, te = mb._fit5_gemm(rng, 24, 8), mb._fit5_attention(rng, 2, 2, 2), mb._fit5_elementwise(rng, 12, 12)
    c = suite_cases("heldout5")
    assert sorted(map(tuple, c["gemm"])) == sorted(gemm + tg)
    assert list(map(tuple, c["attention"])) == attn + ta and list(map(tuple, c["elementwise"])) == ew + te
    assert [list(map(tuple, x)) for x in c["e2e"]] == [dec, pre]
    assert mb.HELDOUT5_SEED != heldout4_shapes.HELDOUT4_SEED and mb.HELDOUT5_SEED != mb.FIT5_SEED


def test_heldout6_is_heldout5s_construction_with_a_new_seed_plus_fit6_tails():
    suite, a, at, e, et, gt, dec, pre = mb._heldout_with_tails(mb.HELDOUT6_SEED)
    rng = random.Random(mb.HELDOUT6_SEED + 2)
    at6 = at + mb._fit6_prefill(rng, 12) + mb._fit6_decode(rng, 12, 6)
    et6 = et + mb._fit5_elementwise(rng, 0, 12, (8192, 32768))
    c = suite_cases("heldout6")
    assert c["gemm"] == suite["gemm_mnk"] and c["attention"] == a + at6 and c["elementwise"] == e + et6
    assert c["e2e"] == [dec, pre]
    seeds = {heldout4_shapes.HELDOUT4_SEED, mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1, mb.FIT5_SEED, mb.FIT6_SEED,
             mb.FIT6_SEED + 1}
    assert not {mb.HELDOUT6_SEED, mb.HELDOUT6_SEED + 1, mb.HELDOUT6_SEED + 2} & seeds


def test_heldout7_is_heldout6s_construction_with_a_new_seed_plus_fit7_decodes():
    suite, a, at, e, et, gt, dec, pre = mb._heldout_with_tails(mb.HELDOUT7_SEED)
    rng = random.Random(mb.HELDOUT7_SEED + 2)
    at7 = at + mb._fit6_prefill(rng, 12) + mb._fit6_decode(rng, 12, 6)
    et7 = et + mb._fit5_elementwise(rng, 0, 12, (8192, 32768))
    at7 = at7 + mb._fit7_decode(random.Random(mb.HELDOUT7_SEED + 3), 24, 12)
    c = suite_cases("heldout7")
    assert c["gemm"] == suite["gemm_mnk"] and c["attention"] == a + at7 and c["elementwise"] == e + et7
    assert c["e2e"] == [dec, pre]
    used = {heldout4_shapes.HELDOUT4_SEED, mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1, mb.FIT5_SEED}
    used |= {s + i for s in (mb.FIT6_SEED, mb.HELDOUT6_SEED, mb.FIT7_SEED) for i in range(3)}
    assert not {mb.HELDOUT7_SEED + i for i in range(4)} & used


def test_heldout8_is_heldout7s_construction_with_a_new_seed_plus_fit8_tails():
    suite7, a, at, e, et, dec, pre = mb._heldout7_draw(mb.HELDOUT8_SEED)
    rng = random.Random(mb.HELDOUT8_SEED + 4)
    gt = mb._fit8_gemm(rng, 20, 12)
    at8 = at + mb._fit8_prefill(rng, 16) + mb._fit8_decode(rng, 24, 8)
    et8 = et + mb._fit8_elementwise(rng, 30)
    c = suite_cases("heldout8")
    assert c["gemm"] == sorted(suite7["gemm_mnk"] + gt, key=lambda x: (x[1], x[2], x[0]))
    assert c["attention"] == a + at8 and c["elementwise"] == e + et8 and c["e2e"] == [dec, pre]
    used = {heldout4_shapes.HELDOUT4_SEED, mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1, mb.FIT5_SEED}
    used |= {s + i for s in (mb.FIT6_SEED, mb.HELDOUT6_SEED, mb.FIT7_SEED, mb.HELDOUT7_SEED, mb.FIT8_SEED)
             for i in range(4)}
    assert not {mb.HELDOUT8_SEED + i for i in range(5)} & used


def test_heldout9_is_heldout8s_construction_with_a_new_seed():
    suite, a, at, e, et, dec, pre = mb._heldout8_draw(mb.HELDOUT9_SEED)
    c = suite_cases("heldout9")
    assert c["gemm"] == suite["gemm_mnk"] and c["attention"] == a + at and c["elementwise"] == e + et
    assert c["e2e"] == [dec, pre]
    # its five generators (seed .. seed + 4) are no earlier suite's
    assert not set(range(mb.HELDOUT9_SEED, mb.HELDOUT9_SEED + 5)) & set(range(mb.HELDOUT8_SEED, mb.HELDOUT8_SEED + 5))
    assert mb.HELDOUT9_SEED - mb.HELDOUT8_SEED > 4 and mb.HELDOUT9_SEED - mb.FIT8_SEED > 4


# the suites drawn with heldout8's construction from a seed of a new base: (suite, seed, base, the seeds of the
# earlier drawn suites whose generators (seed .. seed + 4) must not overlap, the earlier suites it shares no shape
# with). The rules file of each says: the first seed from its base whose draw shares no shape with an earlier suite.
_EARLIER10 = BASE + ("fit5", "fit6", "fit7", "fit8", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9")
NEW_BASE_DRAWS = (
    ("heldout10", mb.HELDOUT10_SEED, 20261205000, (mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED), _EARLIER10),
    ("heldout11", mb.HELDOUT11_SEED, 20261205100, (mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED),
     _EARLIER10 + ("heldout10",)),
    ("heldout12", mb.HELDOUT12_SEED, 20261205200,
     (mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED),
     _EARLIER10 + ("heldout10", "heldout11")),
    ("heldout13", mb.HELDOUT13_SEED, 20261205300,
     (mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12")),
    ("heldout14", mb.HELDOUT14_SEED, 20261205400,
     (mb.HELDOUT13_SEED, mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED,
      mb.FIT8_SEED), _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13")),
    # heldout15 (session 18): 20261205600-20261206043 each share 1-14 shapes with an earlier suite
    ("heldout15", mb.HELDOUT15_SEED, 20261205600,
     (mb.HELDOUT14_SEED, mb.HELDOUT13_SEED, mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED,
      mb.HELDOUT8_SEED, mb.FIT8_SEED), _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14")),
    # heldout16 (session 18, round 10): 20261206200-20261206359 each share 1-11 shapes with an earlier suite
    ("heldout16", mb.HELDOUT16_SEED, 20261206200,
     (mb.HELDOUT15_SEED, mb.HELDOUT14_SEED, mb.HELDOUT13_SEED, mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED,
      mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15")),
    # heldout17 (session 19, round 11): 20261207000-20261207109 each share 1-14 shapes with an earlier suite
    ("heldout17", mb.HELDOUT17_SEED, 20261207000,
     (mb.HELDOUT16_SEED, mb.HELDOUT15_SEED, mb.HELDOUT14_SEED, mb.HELDOUT13_SEED, mb.HELDOUT12_SEED,
      mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16")),
    # heldout18 (session 20, round 12): 20261208000-20261208156 each share 1-12 shapes with an earlier suite
    ("heldout18", mb.HELDOUT18_SEED, 20261208000,
     (mb.HELDOUT17_SEED, mb.HELDOUT16_SEED, mb.HELDOUT15_SEED, mb.HELDOUT14_SEED, mb.HELDOUT13_SEED,
      mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                   "heldout17")),
    # heldout19 (session 23, round 14): 20261209000-20261209459 each share 1-15 shapes with an earlier suite
    ("heldout19", mb.HELDOUT19_SEED, 20261209000,
     (mb.HELDOUT18_SEED, mb.HELDOUT17_SEED, mb.HELDOUT16_SEED, mb.HELDOUT15_SEED, mb.HELDOUT14_SEED,
      mb.HELDOUT13_SEED, mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED,
      mb.FIT8_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                   "heldout17", "heldout18")),
    # heldout20 (session 24, round 15): 20261211000-20261211253 each share 1-13 shapes with an earlier suite, fit9 and
    # heldout19 included. fit9 (seed FIT9_SEED, from base 20261210000) draws from one generator, its seed alone: the
    # check of its five (seed .. seed + 4) covers it
    ("heldout20", mb.HELDOUT20_SEED, 20261211000,
     (mb.HELDOUT19_SEED, mb.HELDOUT18_SEED, mb.HELDOUT17_SEED, mb.HELDOUT16_SEED, mb.HELDOUT15_SEED, mb.HELDOUT14_SEED,
      mb.HELDOUT13_SEED, mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED,
      mb.FIT8_SEED, mb.FIT9_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                   "heldout17", "heldout18", "heldout19", "fit9")),
    # heldout21 (session 24, round 16): 20261213000-20261214231 (1,232 seeds) each share 2-16 shapes with an earlier
    # suite, fit10 and heldout20 included. fit10 (seed FIT10_SEED, from base 20261212000) draws from one generator, its
    # seed alone: the check of its five (seed .. seed + 4) covers it
    ("heldout21", mb.HELDOUT21_SEED, 20261213000,
     (mb.HELDOUT20_SEED, mb.HELDOUT19_SEED, mb.HELDOUT18_SEED, mb.HELDOUT17_SEED, mb.HELDOUT16_SEED, mb.HELDOUT15_SEED,
      mb.HELDOUT14_SEED, mb.HELDOUT13_SEED, mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED,
      mb.HELDOUT8_SEED, mb.FIT8_SEED, mb.FIT9_SEED, mb.FIT10_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                   "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10")),
    # heldout22 (session 24, round 17): 20261215000-20261216543 (1,544 seeds) each share 1-21 shapes with an earlier
    # suite, heldout21 included
    ("heldout22", mb.HELDOUT22_SEED, 20261215000,
     (mb.HELDOUT21_SEED, mb.HELDOUT20_SEED, mb.HELDOUT19_SEED, mb.HELDOUT18_SEED, mb.HELDOUT17_SEED, mb.HELDOUT16_SEED,
      mb.HELDOUT15_SEED, mb.HELDOUT14_SEED, mb.HELDOUT13_SEED, mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED,
      mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED, mb.FIT9_SEED, mb.FIT10_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                   "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21")),
    # heldout23 (session 26, round 18): 20261217000-20261217116 (117 seeds) each share 1-16 shapes with an earlier
    # suite, heldout22 included
    ("heldout23", mb.HELDOUT23_SEED, 20261217000,
     (mb.HELDOUT22_SEED, mb.HELDOUT21_SEED, mb.HELDOUT20_SEED, mb.HELDOUT19_SEED, mb.HELDOUT18_SEED, mb.HELDOUT17_SEED,
      mb.HELDOUT16_SEED, mb.HELDOUT15_SEED, mb.HELDOUT14_SEED, mb.HELDOUT13_SEED, mb.HELDOUT12_SEED, mb.HELDOUT11_SEED,
      mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED, mb.FIT9_SEED, mb.FIT10_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                   "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21", "heldout22")),
    # heldout24 (session 27, round 19): 20261218000-20261219568 (1,569 seeds) each share shapes with an earlier suite,
    # heldout23 included
    ("heldout24", mb.HELDOUT24_SEED, 20261218000,
     (mb.HELDOUT23_SEED, mb.HELDOUT22_SEED, mb.HELDOUT21_SEED, mb.HELDOUT20_SEED, mb.HELDOUT19_SEED, mb.HELDOUT18_SEED,
      mb.HELDOUT17_SEED, mb.HELDOUT16_SEED, mb.HELDOUT15_SEED, mb.HELDOUT14_SEED, mb.HELDOUT13_SEED, mb.HELDOUT12_SEED,
      mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED, mb.FIT9_SEED,
      mb.FIT10_SEED),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                   "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21", "heldout22",
                   "heldout23")),
    # heldout25 (session 32, round 22): 20261221200-20261228716 (7,517 seeds) each share shapes with an earlier suite,
    # fit11, fit12, heldout24 and the default GEMM grid included (the first search to see that grid). fit11 and fit12
    # draw from heldout8's construction at their seeds (FIT11_SEEDS, FIT12_SEEDS): their generators are checked too
    ("heldout25", mb.HELDOUT25_SEED, 20261221200,
     (mb.HELDOUT24_SEED, mb.HELDOUT23_SEED, mb.HELDOUT22_SEED, mb.HELDOUT21_SEED, mb.HELDOUT20_SEED, mb.HELDOUT19_SEED,
      mb.HELDOUT18_SEED, mb.HELDOUT17_SEED, mb.HELDOUT16_SEED, mb.HELDOUT15_SEED, mb.HELDOUT14_SEED, mb.HELDOUT13_SEED,
      mb.HELDOUT12_SEED, mb.HELDOUT11_SEED, mb.HELDOUT10_SEED, mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED,
      mb.FIT9_SEED, mb.FIT10_SEED, *mb.FIT11_SEEDS, *mb.FIT12_SEEDS),
     _EARLIER10 + ("heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16",
                   "heldout17", "heldout18", "heldout19", "fit9", "heldout20", "fit10", "heldout21", "heldout22",
                   "heldout23", "heldout24", "fit11", "fit12")),
)
# the searches that saw the default GEMM grid (suite_checks.DEFAULT_GRID_SUITES): from session 32 on
GRID_SEARCHES = ("heldout25",)


def _draw_shapes(seed):
    suite, a, at, e, et, _, _ = mb._heldout8_draw(seed)
    ew = {(k, c, s) if k == "rope_fused" else (k, (s // 2) // c, c) for k, c, s in e + et}
    return {("gemm",) + tuple(x) for x in suite["gemm_mnk"]} | {tuple(x) for x in a + at} | ew


@pytest.mark.parametrize("name, seed, base, prior, earlier", NEW_BASE_DRAWS, ids=[d[0] for d in NEW_BASE_DRAWS])
def test_is_heldout8s_construction_with_a_seed_from_a_new_base(name, seed, base, prior, earlier):
    suite, a, at, e, et, dec, pre = mb._heldout8_draw(seed)
    c = suite_cases(name)
    assert c["gemm"] == suite["gemm_mnk"] and c["attention"] == a + at and c["elementwise"] == e + et
    assert c["e2e"] == [dec, pre]
    for s in prior:  # its five generators (seed .. seed + 4) are no earlier suite's
        assert not set(range(seed, seed + 5)) & set(range(s, s + 5))
    assert str(seed) in open(f"validation/{name}_rules.md").read() and str(base) in open(
        f"validation/{name}_rules.md").read()


@pytest.mark.parametrize("name, seed, base, prior, earlier", NEW_BASE_DRAWS, ids=[d[0] for d in NEW_BASE_DRAWS])
def test_seed_is_the_first_of_its_base_sharing_no_shape(name, seed, base, prior, earlier):
    # the searches as they ran: sessions 15 - 27 without the default GEMM grid, which they did not see (heldout14
    # shares one of its shapes, its SUITES entry; every later suite none: test_shares_no_case_with_earlier_suites),
    # session 32's with it (GRID_SEARCHES)
    seen = set().union(*(suite_shapes(v, default_grid=name in GRID_SEARCHES) for v in earlier))
    assert not _draw_shapes(seed) & seen
    for s in range(base, seed):
        assert _draw_shapes(s) & seen, s


def test_heldout_tables_groups_every_tail_suite_including_the_unmeasured_one():
    """validation/heldout_tables.py scores each drawn suite's tail classes once it is measured: every suite of
    its TAIL_SUITES (the fresh one, heldout13, included before it is measured; no retired suite) gets its tail
    groups, with the fit-7 tails from heldout7 on and the fit-8 tails from heldout8 on (heldout13_rules.md:
    grouped as for heldout8 - heldout12). A suite missing from the table would fail here, not in the one
    scoring."""
    from validation import heldout_tables as ht
    want = {"heldout5": [""], "heldout6": ["", "fit-6 tail: "], "heldout7": ["", "fit-6 tail: ", "fit-7 tail: "]}
    for suite in ht.TAIL_SUITES:
        groups = ht._tail_sets(dataset.SUITES[suite])
        assert list(groups) == want.get(suite, ["", "fit-6 tail: ", "fit-7 tail: ", "fit-8 tail: "]), suite
        assert all(groups.values()), suite
    # heldout14 (drawn for the H100), heldout15 (for the round-9 model), heldout16 (for the round-10 model), heldout17
    # (for the round-11 model, measured on the H100 only), heldout18 (for the round-12 model, re-frozen for round
    # 13, measured on both GPUs in session 22), heldout19 (for the round-14 model, measured on the H100 only in session
    # 23), heldout20 (for the round-15 model, measured on the H100 only in session 24), heldout21 (for the round-16
    # model, measured on the H100 only in session 24), heldout22 (for the round-17 model, measured on the H100 only in
    # session 25), heldout23 (for the round-18 model, measured on the H100 only in session 26) and heldout24 (for the
    # round-19 model, not measured yet) are listed; LATEST is the freshest suite measured on the H200 (heldout18, run
    # h200_run23, session 22)
    assert ht.TAIL_SUITES[-13:] == ("heldout13", "heldout14", "heldout15", "heldout16", "heldout17", "heldout18",
                                    "heldout19", "heldout20", "heldout21", "heldout22", "heldout23", "heldout24",
                                    "heldout25")
    assert ht.LATEST == "test18"
    assert not set(ht.TAIL_SUITES) & set(mb.RETIRED_SUITES)
    assert not {split for split, _ in ht.H200_SUITES} & {dataset.SUITES[s] for s in mb.RETIRED_SUITES}


def test_heldout_tables_prints_an_unmeasured_suite_as_not_measured():
    """A suite with no row of its split in the manifest (heldout12, retired unmeasured) prints as not measured,
    rather than failing or scoring an empty table; the fresh suite, heldout13, measured in run 18, prints its
    scored table and its tail classes."""
    from validation import heldout_tables as ht
    assert ht.h200_suite_lines(ht.VAL / "h200_runs.csv", "test12", "heldout12", set()) == [
        "### heldout12", "", "(not measured yet)", ""]
    title = dict(ht.H200_SUITES)[ht.LATEST]
    assert "heldout18" in title and ht.TAIL_RUNS[ht.LATEST] == ("heldout18", 23)


# the suites drawn for a model on main, freshest first: (suite, its runs as its rules file names them, the H200 run
# number); validation/heldout_tables.py lists them first in both GPUs' tables, in this order, and last in TAIL_SUITES
WIRED = (("heldout25", {"h200": "h200_run30", "h100": "h100_run26"}, 30),
         ("heldout24", {"h200": "h200_run29", "h100": "h100_run23"}, 29),
         ("heldout23", {"h200": "h200_run28", "h100": "h100_run22"}, 28),
         ("heldout22", {"h200": "h200_run27", "h100": "h100_run21"}, 27),
         ("heldout21", {"h200": "h200_run26", "h100": "h100_run20"}, 26),
         ("heldout20", {"h200": "h200_run25", "h100": "h100_run18"}, 25),
         ("heldout19", {"h200": "h200_run24", "h100": "h100_run16"}, 24),
         ("heldout18", {"h200": "h200_run23", "h100": "h100_run15"}, 23),
         ("heldout17", {"h200": "h200_run22", "h100": "h100_run14"}, 22),
         ("heldout16", {"h200": "h200_run21", "h100": "h100_run13"}, 21),
         ("heldout15", {"h200": "h200_run20", "h100": "h100_run12"}, 20))


@pytest.mark.parametrize("pos, suite, named, h200_run", [(i,) + w for i, w in enumerate(WIRED)],
                         ids=[w[0] for w in WIRED])
def test_suite_is_wired_for_both_gpus_before_it_is_measured(pos, suite, named, h200_run):
    """heldout15 (validation/heldout15_rules.md), heldout16 (validation/heldout16_rules.md), heldout17
    (validation/heldout17_rules.md), heldout18 (validation/heldout18_rules.md), heldout19
    (validation/heldout19_rules.md), heldout20 (validation/heldout20_rules.md), heldout21
    (validation/heldout21_rules.md), heldout22 (validation/heldout22_rules.md), heldout23
    (validation/heldout23_rules.md) and heldout24 (validation/heldout24_rules.md) are scored by
    validation/heldout_tables.py on the H200 and the H100 as heldout14 is on the H100: the split, the place among the
    freshest in both GPUs' tables and in TAIL_SUITES, the runs the rules file names, and the H200 run it would be
    listed in making it LATEST. Checked on the suite and run tables alone: no measured row is read (a manifest's run
    listing is all check_named_runs sees)."""
    from validation import heldout_tables as ht
    split = f"test{suite.removeprefix('heldout')}"
    assert dataset.SUITES[suite] == split == dataset.HELDOUT_SPLITS[suite]
    assert ht.TAIL_SUITES[len(ht.TAIL_SUITES) - 1 - pos] == suite
    assert ht.H200_SUITES[pos][0] == split == ht.H100_SUITES[pos][0]
    rules = open(f"validation/{suite}_rules.md").read()
    for gpu, (_, title) in (("h200", ht.H200_SUITES[pos]), ("h100", ht.H100_SUITES[pos])):
        run = ht.NAMED_RUNS[suite][gpu]
        assert run == named[gpu] and run in title and run in rules
        assert f"{suite}_rules.md" in title and f"validation/{gpu}_runs.csv" in rules
    # once its H200 run is listed, the split is scored with its tail classes and end to end, the freshest H200 suite
    # unless a fresher one of WIRED is listed too
    runs, latest = ht.tail_runs({**ht.RUN_OF, suite: h200_run})
    assert runs[split] == (suite, h200_run) and (pos > 0 or latest == split)  # a fresher one is listed since
    _, latest = ht.tail_runs({**ht.RUN_OF, **{s: r for s, _, r in WIRED}})
    assert latest == dataset.SUITES[WIRED[0][0]]
    assert list(ht._tail_sets(split)) == ["", "fit-6 tail: ", "fit-7 tail: ", "fit-8 tail: "]
    # the manifests list it under the named run or not at all; another run name, the other GPU's run or a second
    # listing is refused
    ht.check_named_runs("h200", dataset.manifest_runs("validation/h200_runs.csv"))
    ht.check_named_runs("h100", dataset.manifest_runs("validation/h100_runs.csv"))
    ht.check_named_runs("h200", [(named["h200"], suite, None)])
    ht.check_named_runs("h100", [(named["h100"], suite, None)])
    other = WIRED[1 if pos == 0 else 0][1]  # another suite's runs
    for gpu, bad in (("h200", [(other["h200"], suite, None)]),
                     ("h100", [(named["h100"], suite, None), (other["h100"], suite, None)]),
                     ("h100", [(named["h200"], suite, None)]),
                     ("h200", [(named["h200"], suite, None), (named["h200"], suite, None)])):
        with pytest.raises(SystemExit, match=f"validation/{gpu}_runs.csv: suite {suite}"):
            ht.check_named_runs(gpu, bad)


def _status_above_frozen_text(rules, name, commit, session):
    """A rules file written before its run: after the run one dated status paragraph was added above the frozen text,
    and the rest is the freeze commit's text byte for byte (a shallow clone without that commit checks nothing here)."""
    import subprocess
    frozen = subprocess.run(["git", "show", f"{commit}:validation/{name}_rules.md"], capture_output=True, text=True)
    if frozen.returncode == 0:
        head, sep, tail = frozen.stdout.partition("\n\n")
        assert sep and "**Status" not in frozen.stdout and rules.count("**Status") == 1
        status = rules[len(head) + 2:len(rules) - len(tail) - 2]
        assert rules == head + "\n\n" + status + "\n\n" + tail  # exactly one paragraph between head and body
        assert status.startswith(f"**Status (session {session}") and "\n\n" not in status


def _unit_probe_rule_fixed(rules, body, suite, h200_run, h100_run):
    """The unit-probe rule as heldout19 fixed it: both runs' probe folders, the two calibration runs it is compared
    with, and never used to adjust a row of the suite."""
    assert "### Unit probe" in rules and "validation/diagnostics/<run>_unit_probe/" in rules
    assert f"validation/diagnostics/{h200_run}_unit_probe/" in rules
    assert f"validation/diagnostics/{h100_run}_unit_probe/" in rules
    assert "validation/raw_h100_run4" in rules and "validation/raw_h200_run1" in rules
    assert f"never used to adjust, exclude or re-score any {suite} row" in body


def _seen_on_the_h100_only(split, round_, score, commit, h100_run, h200_run):
    """A suite measured on the H100 only: its H100 title says seen with the score published at its freeze commit, its
    H200 title says not measured yet and never calls it seen."""
    from validation import heldout_tables as ht
    title = dict(ht.H100_SUITES)[split]
    assert "PREVIOUSLY SEEN" in title and f"scored once with round {round_}" in title and score in title
    assert commit in title and h100_run in title
    title = dict(ht.H200_SUITES)[split]
    assert "not measured on an H200 yet" in title and "seen" not in title.lower() and h200_run in title


def _fresh_suite_rules(n, position, round_, model_commit, freeze_commit, session, h200_run, h100_run):
    """What every fresh suite since heldout20 fixed in its rules file, checked the same way: its place in both GPUs'
    tables (first while fresh), the freeze-commit rule, the model under test (round `round_`, built on the model
    frozen at `model_commit`), the previous suite declared seen, the unit-probe rule, the unchanged exclusion rules and
    one dated status paragraph (session `session`) above the text of the freeze commit, or, for a suite not measured
    yet (`freeze_commit` None: it cannot name its freeze commit), no status line; its runs are named. Returns the
    rules' text with its line breaks read as spaces, for the suite's own figures."""
    from validation import heldout_tables as ht
    suite, split = f"heldout{n}", f"test{n}"
    assert dataset.SUITES[suite] == split == ht.H200_SUITES[position][0] == ht.H100_SUITES[position][0]
    assert (ht.FRESH[0] == split) == (position == 0)
    rules = open(f"validation/{suite}_rules.md").read()
    assert f'the latest commit whose message starts "FROZEN for {suite}"' in rules
    assert f"The model under test: round {round_}" in rules and model_commit in rules
    body = " ".join(rules.split())
    assert f"heldout{n - 1} is a seen suite for round {round_}" in body
    _unit_probe_rule_fixed(rules, body, suite, h200_run, h100_run)
    assert f"Unchanged from heldout13 - heldout{n - 1}" in rules
    if freeze_commit is None:  # written before the run: no status line yet
        assert "**Status" not in rules
    else:
        _status_above_frozen_text(rules, suite, freeze_commit, session)
    return body


def test_heldout25_is_the_fresh_suite_of_the_round_22_model():
    """The end to end labelled fresh (new random points) is heldout25's on both GPUs (and heldout24's on the H200, whose
    round-22 prices are round 19's); heldout25 is the suite drawn for the round-22 model (validation/heldout25_rules.md:
    the H100's GEMM tiles from the nvjet menus, chosen by s38 on fit suite 12, the H100 re-fitted with fit11 and
    fit12); heldout24, measured on the H100 and scored once with round 19 (session 27), is labelled seen on the H100
    with the score it was published at, and stays unseen on the H200 (not measured there yet). The rules file names
    the freeze commit, discloses what motivated round 22 and fixes the unit probe before measurement; its text below
    the status line (added after the H100 run, session 32) is the freeze commit's (0350b60)."""
    from validation import heldout_tables as ht
    body = _fresh_suite_rules(25, 0, 22, "36b1055", "0350b60", 32, "h200_run30", "h100_run26")
    assert "all ops 3.6 / 10.8" in body and "GEMM bf16 4.9 / 13.4" in body and "10084062ea94" in body
    assert "eager 1.6, engine 2.0, engine-fused 1.3" in body and "transferred 4.5 / 14.4" in body
    assert "GEMVs +4.2 %, every GEMM row +2.5 %" in body and "4a9dda0" in body
    assert ht.FRESH == ("test25", "test24")
    assert "s38_h100_gemm_fit12" in body and "c48d533" in body and "2cdd080" in body and "r22_h100" in body
    assert "A (the committed form) 5.6 / 16.3, **F**" in body and "(-1.50, 95 % [-2.14, -0.86])" in body
    assert "--terms r22_h100 --energy-backend fa2" in body and "s39_fit12_residuals" in body
    assert "r23_fit11_probe.txt" in body and "fit11 was therefore fitted in round 22, not used to choose" in body
    assert "No round-22 choice was made, changed, accepted or reverted on any held-out score" in body
    assert "20261228717" in body and "7,517 seeds" in body and "no H200 own price" in body
    title = dict(ht.H100_SUITES)["test24"]
    assert "PREVIOUSLY SEEN" in title and "scored once with round 19" in title and "3.4 / 10.7" in title
    assert "36b1055" in title and "h100_run23" in title
    title = dict(ht.H200_SUITES)["test24"]
    assert "fresh suite drawn for the round-19 model" in title and "seen" not in title.lower().replace("unseen", "")


def test_heldout24_was_the_fresh_suite_of_the_round_19_model():
    """heldout24 was the suite drawn for the round-19 model
    (validation/heldout24_rules.md: round 18's FA2 prefill form chosen on the H200's fit rows by s35, the H200
    re-fitted, the H100 unchanged); heldout23, measured on the H100 and scored once with round 18 (session 26), is
    labelled seen on the H100 with the score it was published at; on the H200 heldout19 - heldout23 were never measured
    and round 19 moved their frozen H200 prices, so each is titled as scored, if ever measured, at a checkout of
    e036cfe (their frozen H200 prices, SUPERSEDED_FROZEN in tests/test_heldout_freeze.py), never called seen. The
    rules file names the freeze commit, discloses what motivated round 19 (the H200's seen FA2 prefill re-scores, the
    train-only GEMM fits) and fixes the unit probe before measurement; its text below the status line (added after
    the H100 run, session 27) is the freeze commit's (36b1055)."""
    from validation import heldout_tables as ht
    body = _fresh_suite_rules(24, 1, 19, "3299b19", "36b1055", 27, "h200_run29", "h100_run23")
    assert "all ops 3.4 / 10.7" in body and "GEMM bf16's p90 (4.2 / 15.0: 15.003, over by 0.003 points)" in body
    assert "FA2-pinned prefill 4.3 / 11.2" in body and "7f077edb9e6c" in body and "fabea25" in body
    assert "eager 1.7, engine 1.1, engine-fused 2.4" in body and "transferred 4.6 / 14.6" in body
    assert "s35_h200_fa2_kernels" in body and "d13b32d" in body and "e036cfe" in body and "r19_h200" in body
    assert "--hw h200 --measurements validation/h200_runs.csv --terms r19_h200" in body
    assert "A 3.7 / 13.4, K 3.7 / 9.6" in body and "third scoring of those validation rows" in body
    assert "round 19 changes no H100 own price" in body
    assert "all ops 3.9 / 11.0" in body and "GEMM bf16, 5.6 / 14.1 on its median" in body
    assert "No round-19 choice is made, changed, accepted or reverted on the scores of heldout23" in body
    for run in ("h200_run24", "h200_run25", "h200_run26", "h200_run27", "h200_run28"):
        assert f"validation/diagnostics/{run}_unit_probe/" in body
    _seen_on_the_h100_only("test23", 18, "3.9 / 11.0", "3299b19", "h100_run22", "h200_run28")
    for n in range(19, 24):  # never measured on an H200; priced at a checkout of e036cfe if ever measured
        title = dict(ht.H200_SUITES)[f"test{n}"]
        assert "at a checkout of e036cfe" in title and f"h200_run{n + 5}" in title


def test_heldout23_was_the_fresh_suite_of_the_round_18_model():
    """heldout23 was the suite drawn for the round-18 model (validation/heldout23_rules.md), third in both GPUs'
    tables now that heldout25 is the fresh one; heldout22, measured on the H100 and scored once with round 17 (session
    25, the score read before round 18 was chosen: its FA2-pinned prefill miss named the class round 18 prices anew),
    is labelled seen on the H100 with the score it was published at; on the H200 heldout22 is not measured yet and not
    called seen. The rules file names the freeze commit, discloses what motivated
    round 18 (the fit-shape records and selections s30 - s33, the sixth scoring of their validation rows) and fixes the
    unit probe before measurement; its text below the status line (added after the H100 run, session 26) is the
    freeze commit's (the second "FROZEN for heldout23", 3299b19)."""
    body = _fresh_suite_rules(23, 2, 18, "98f5936", "3299b19", 26, "h200_run28", "h100_run22")
    assert "all ops 3.9 / 11.0" in body and "GEMM bf16 (5.6 / 14.1, on its median)" in body
    assert "priced anew, 4.1 / 11.6" in body and "4b0b0417a78e" in body
    assert "s33_fa2_kernels" in body and "42d9c83" in body and "r18_h100" in body
    assert "--terms r18_h100 --energy-backend fa2" in body and "**GMS**" in body
    assert "M 6.1 / 15.2, MS 4.6 / 11.7, GMS 4.0 / 12.0" in body and "A 7.0 / 16.8" in body
    assert "sixth scoring of those validation rows" in body
    assert "h100_kernel_profile.txt" in body and "h100_fa2_uneven_probe.txt" in body
    assert "h100_run21" in body and "81fa43c8f9e9" in body
    assert "all ops 3.8 / 11.5" in body and "GEMM bf16 (5.2 / 14.2, on its median)" in body
    assert "FA2-pinned prefill (6.5 / 15.6, median and p90)" in body
    assert "eager 1.3, engine 0.7, engine-fused 2.0" in body and "4.7 / 14.6" in body
    assert "GEMVs +0.1 %, every GEMM row +0.8 %" in body
    assert "On the H200 heldout19 - heldout22 were never measured" in body
    assert "round 18 changes no H200 own price" in body and "heldout23 is seen on neither GPU" in body
    assert "No round-18 choice is made, changed, accepted or reverted on the scores of heldout22" in body
    for run in ("h200_run24", "h200_run25", "h200_run26", "h200_run27"):  # measurable in heldout23's H200 command
        assert f"validation/diagnostics/{run}_unit_probe/" in body
    # heldout22: seen on the H100 with its published round-17 score; on the H200 not measured yet, not called seen
    _seen_on_the_h100_only("test22", 17, "3.8 / 11.5", "98f5936", "h100_run21", "h200_run27")


def test_heldout22_was_the_fresh_suite_of_the_round_17_model():
    """heldout22 was the suite drawn for the round-17 model (validation/heldout22_rules.md), fourth in both GPUs'
    tables now that heldout25 is the fresh one; heldout21, measured on the H100 and scored once with round 16 (session
    24, the score after which a review found round 16 had kept s26's residual choices without re-running s26 on its
    fit rows, which round 17 does), is labelled seen on the H100 with the score it was published at; on the H200
    heldout21 is not measured yet and not called seen (round 17 moves no H200 own price). The rules file names the
    freeze commit, discloses what motivated round 17 and fixes the unit probe before measurement; its text below the
    status line (added after the H100 run, session 25) is the freeze commit's."""
    body = _fresh_suite_rules(22, 3, 17, "bdb22e5", "98f5936", 25, "h200_run27", "h100_run21")
    assert "s29_fit10_residuals" in body and "h100_run20" in body and "bddd2d89743f" in body
    assert "all ops 3.6 / 11.6" in body and "GEMM bf16 (5.4 / 15.7)" in body
    assert "FA2-pinned prefill's median (6.0 / 13.4)" in body and "HF eager prefill's median (5.3 / 14.1)" in body
    assert "eager 1.5, engine 0.7, engine-fused 2.6" in body and "4.6 / 14.5" in body
    assert "On the H200 heldout19 - heldout21 were never measured" in body
    assert "round 17 changes no H200 own price" in body and "heldout22 is seen on neither GPU" in body
    assert "No round-17 choice is made, changed, accepted or reverted on the scores of heldout21" in body
    assert "all ops 3.8 / 11.5" in body and "(5.2 / 14.2, on its median)" in body and "81fa43c8f9e9" in body
    # heldout21: seen on the H100 with its published round-16 score; on the H200 not measured yet, not called seen
    _seen_on_the_h100_only("test21", 16, "3.6 / 11.6", "bdb22e5", "h100_run20", "h200_run26")


def test_heldout21_was_the_fresh_suite_of_the_round_16_model():
    """heldout21 was the suite drawn for the round-16 model (validation/heldout21_rules.md), fifth in both GPUs'
    tables now that heldout25 is the fresh one; heldout20, measured on the H100 and scored once with round 15 (session
    24, the score whose miss named fit suite 10, which round 16 fits), is labelled seen on the H100 with the score it
    was published at; on the H200 heldout20 is not measured yet and not called seen (round 16 moves no H200 own price).
    The rules file names the freeze commit, discloses what motivated round 16 and fixes the unit probe before
    measurement; its text below the status line (added after the H100 run, session 24) is the freeze commit's."""
    body = _fresh_suite_rules(21, 4, 16, "82c7e2e", "bdb22e5", 24, "h200_run26", "h100_run20")
    assert "s28_fa2_waves_fit10" in body and "h100_run19" in body and "0b000e63f731" in body
    assert "all ops 3.9 / 11.4" in body and "(4.5 / 16.7, on its p90)" in body and "4.1 / 13.0" in body
    assert "eager 1.9, engine 0.6, engine-fused 2.0" in body and "GEMVs +0.3 %, every GEMM row +0.4 %" in body
    assert "h100_run18" in body and "b7e8ad6b07e8" in body and "4.8 / 14.3" in body
    assert "On the H200 heldout19 and heldout20 were never measured" in body
    assert "round 16 changes no H200 own price" in body and "heldout21 is seen on neither GPU" in body
    assert "all ops 3.6 / 11.6" in body and "(5.4 / 15.7, median and p90)" in body and "bddd2d89743f" in body
    # heldout20: seen on the H100 with its published round-15 score; on the H200 not measured yet, not called seen
    _seen_on_the_h100_only("test20", 15, "3.9 / 11.4", "82c7e2e", "h100_run18", "h200_run25")


def test_heldout20_was_the_fresh_suite_of_the_round_15_model():
    """heldout20 was the suite drawn for the round-15 model (validation/heldout20_rules.md), sixth in both GPUs'
    tables now that heldout25 is the fresh one; heldout19, measured on the H100 and scored once with round 14 (session
    23, the score whose misses named fit suite 9, which round 15 fits), is labelled seen on the H100 with the score it
    was published at; on the H200 heldout19 is not measured yet and not called seen (round 15 moves no H200 own price).
    The rules file names the freeze commit, discloses what motivated round 15 and fixes the unit probe before
    measurement; its text below the status line (added after the H100 run, session 24) is the freeze commit's."""
    body = _fresh_suite_rules(20, 5, 15, "805944e", "82c7e2e", 24, "h200_run25", "h100_run18")
    assert "s26_fit9_residuals" in body
    assert "all ops 3.7 / 10.6" in body and "(4.5 / 16.2)" in body and "(4.1 / 19.4)" in body
    assert "eager 2.1, engine 3.3, engine-fused 1.6" in body and "GEMVs +3.8 %, every GEMM row +2.2 %" in body
    assert "h100_run17" in body and "6eb14013046e" in body
    assert "On the H200 heldout19 was never measured" in body and "round 15 changes no H200 own price" in body
    assert "all ops 3.9 / 11.4" in body and "(4.5 / 16.7, on its p90)" in body and "b7e8ad6b07e8" in body
    # heldout19: seen on the H100 with its published round-14 score; on the H200 not measured yet, not called seen
    _seen_on_the_h100_only("test19", 14, "3.7 / 10.6", "805944e", "h100_run16", "h200_run24")


def test_heldout19_was_the_fresh_suite_of_the_round_14_model():
    """heldout19 was the suite drawn for the round-14 model (validation/heldout19_rules.md), seventh in both GPUs'
    tables now that heldout25 is the fresh one; heldout18, measured on both GPUs and scored once with round 13
    (session 22, the score that named round 14's class), heldout17, measured on the H100 and scored once with round 11
    (session 20), heldout16, measured and scored once with round 10 (session 18), heldout15, frozen for round 9, and
    every earlier suite are labelled seen, heldout18's and heldout16's titles and heldout17's H100 title with the score
    each was published at. The rules file discloses what motivated round 14 and fixes the unit probe before
    measurement; its text below the status line is the freeze commit's."""
    from validation import heldout_tables as ht
    assert dataset.SUITES["heldout19"] not in ht.FRESH
    assert dataset.SUITES["heldout19"] == ht.H200_SUITES[6][0] == ht.H100_SUITES[6][0]
    rules = open("validation/heldout19_rules.md").read()
    assert 'the latest commit whose message starts "FROZEN for heldout19"' in rules
    assert "round 14" in rules and "s25_graph_terms" in rules and "46901c5" in rules
    body = " ".join(rules.split())  # the text with its line breaks read as spaces
    assert "heldout18 is therefore a seen suite for round 14" in body
    assert "engine 4.1" in body and "About 2.6 points" in body and "median (5.1 / 13.1)" in body
    assert "### Unit probe" in rules and "validation/diagnostics/<run>_unit_probe/" in rules
    assert "validation/raw_h100_run4" in rules and "validation/raw_h200_run1" in rules
    assert "never used to adjust, exclude or re-score any heldout19 row" in body
    # written before the run: a dated status line was added above the frozen text after the run (session 23); the text
    # below it is the frozen text of the freeze commit 805944e, byte for byte
    _status_above_frozen_text(rules, "heldout19", "805944e", 23)
    # heldout18's rules (frozen text) still say what it tested
    rules18 = open("validation/heldout18_rules.md").read()
    assert 'the commit whose message starts "FROZEN for heldout18"' in rules18
    assert "round 12" in rules18 and "s23_row_iters" in rules18 and "3893292" in rules18
    assert "heldout17 is therefore a seen suite for round 12" in rules18
    assert "The model under test: round 13" in rules18 and "s24_ew_dispatch" in rules18 and "4250fe9" in rules18
    for suites, score in ((ht.H200_SUITES, "3.4 / 10.5"), (ht.H100_SUITES, "3.7 / 11.5")):
        title = dict(suites)["test18"]
        assert "PREVIOUSLY SEEN" in title and "scored once with round 13" in title and score in title
        assert "46901c5" in title
    title = dict(ht.H100_SUITES)["test17"]
    assert "PREVIOUSLY SEEN" in title and "scored once with round 11" in title and "3.9 / 11.9" in title
    title = dict(ht.H200_SUITES)["test17"]  # not measured on the H200 yet: scored once with round 11 if it is
    assert "to be scored once with round 11" in title and "at a checkout of 4250fe9, not by these tables" in title
    assert "seen for rounds 12" in title
    for suites, score in ((ht.H200_SUITES, "3.3 / 11.0"), (ht.H100_SUITES, "3.9 / 12.5")):
        title = dict(suites)["test16"]
        assert "PREVIOUSLY SEEN" in title and "scored once with round 10" in title and score in title
