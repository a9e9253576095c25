"""The papers' headline claims, each as paired tests fixed before any result was seen.

A Test compares scorer a with scorer b (or a constant) on one metric over a selection of OOD sets
(`Sets`), with the claimed direction. A Claim holds its tests; its verdict is fixed in advance:
'confirmed' ('contradicted', 'inconclusive') if every test is, 'not run' if a test's scores are
missing, otherwise 'mixed' (with the counts). The paper's numbers are as
printed (Fashion-MNIST analogues of the papers' datasets are named in `analogue`).
"""

from __future__ import annotations

import dataclasses

from experiments.claims.config import BLUR, UV_PAIRS


@dataclasses.dataclass(frozen=True)
class Side:
    """Scores of one scorer of one model, from one group's run."""

    group: str
    model: str
    scorer: str

    def __str__(self) -> str:
        return f"{self.scorer} ({self.model})"


@dataclasses.dataclass(frozen=True)
class Sets:
    """OOD sets of a kind ("far", "near", "resize", "covariate"), narrowed to names ending in
    `suffix` (e.g. "gaussian_blur-5": one severity)."""

    kind: str
    suffix: str = ""

    def __str__(self) -> str:
        return f"{self.kind} sets" + (f" *{self.suffix}" if self.suffix else "")


@dataclasses.dataclass(frozen=True)
class Test:
    """metric(a on sets) - metric(b on sets_b or sets) is claimed `expect` ('greater' / 'less') than 0.
    reduce: 'mean' over the sets, or 'range' (max - min: how much the metric moves between sets)."""

    a: Side
    b: Side | float
    sets: Sets
    metric: str = "auroc"
    expect: str = "greater"
    sets_b: Sets | None = None
    reduce: str = "mean"

    def label(self) -> str:
        stat = "range of " if self.reduce == "range" else ""
        b_sets = f" on {self.sets_b}" if self.sets_b else ""
        rel = ">" if self.expect == "greater" else "<"
        return f"{stat}{self.metric}: {self.a} on {self.sets} {rel} {self.b}{b_sets}"


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    where: str
    statement: str
    paper_numbers: str
    tests: tuple[Test, ...]
    analogue: str = ""
    untested: str = ""  # why a claim has no test here


def _vs(group: str, a: tuple[str, str], bs: list[tuple[str, str]], sets: Sets, metric: str, expect: str,
        b_group: str | None = None) -> tuple[Test, ...]:
    return tuple(Test(Side(group, *a), Side(b_group or group, *b), sets, metric, expect) for b in bs)


FAR, NEAR, RESIZE = Sets("far"), Sets("near"), Sets("resize")
BASELINES_000 = [("plain", "msp"), ("plain", "odin"), ("plain", "energy")]

CLAIMS: tuple[Claim, ...] = (
    Claim("000-T3", "000", "Table 3", "AMP's FPR95 is far below MSP's, ODIN's and Energy's on far OOD",
          "CIFAR-10, ResNet-34, mean of 7 sets, FPR95: AMP 12.33, Energy 28.89, ODIN 33.40, MSP 55.12 "
          "(AUROC 97.20 / 94.47 / 92.70 / 90.37)",
          _vs("000", ("anchored", "amp"), BASELINES_000, FAR, "fpr95", "less"),
          "far OOD: the suite's digits, textures, photo crops / resizes and noise"),
    Claim("000-F5a", "000", "Fig. 5b, Table 5", "AMP beats the baselines at every corruption severity",
          "ImageNet-C Gaussian blur, ResNet-50; levels 1-4 plotted only; level 5 AUROC: AMP 99.07 "
          "(MSP/ODIN/Energy not printed for this benchmark)",
          tuple(t for s in range(1, 6) for t in _vs("000", ("anchored", "amp"), BASELINES_000,
                                                     Sets("covariate", f"{BLUR}-{s}"), "auroc", "greater")),
          "Fashion-MNIST test images under Gaussian blur at severities 1-5 as the OOD sets"),
    Claim("000-F5b", "000", "Fig. 5a-b", "AMP's score falls with the corruption severity (its AUROC rises)",
          "plotted only: no numbers printed; the text speaks of a 'gradual transition' from level 1 to 5",
          tuple(Test(Side("000", "anchored", "amp"), Side("000", "anchored", "amp"),
                     Sets("covariate", f"{BLUR}-{s + 1}"), "auroc", "greater", sets_b=Sets("covariate", f"{BLUR}-{s}"))
                for s in range(1, 5)),
          "the blurred test images at consecutive severities (each severity's own random test split of the "
          "same 2000 images: the ID side is paired, the OOD side is not paired by image)"),
    Claim("000-T8a", "000", "Table 8", "Consistency training lowers AMP's FPR95",
          "WRN-40-2, CIFAR-10 vs SVHN, 5 anchors, FPR95: no corruption 50.73, all five 5.19",
          (Test(Side("000", "anchored", "amp"), Side("000", "anchored_plain", "amp"), FAR, "fpr95", "less"),),
          "far sets; consistency with all five corruptions against plain anchoring"),
    Claim("000-T8b", "000", "Table 8", "More anchors lower AMP's FPR95",
          "WRN-40-2, CIFAR-10 vs SVHN, FPR95 at K = 2 / 20: 5.32 / 5.22 (all corruptions), 50.71 / 50.89 "
          "(none); the paper itself finds no significant difference",
          (Test(Side("000", "anchored_k20", "amp"), Side("000", "anchored_k2", "amp"), FAR, "fpr95", "less"),)),
    Claim("000-T7", "000", "Table 7", "AMP is robust to the resize filter where Gram is not",
          "CIFAR-10, ResNet-34, LSUN resized by Pillow, FPR95 nearest / bilinear / bicubic / lanczos: "
          "Gram 1.8 / 46.2 / 49.0 / 46.3, AMP 7.1 / 13.0 / 13.9 / 14.3",
          (Test(Side("000", "anchored", "amp"), Side("000", "plain", "gram"), RESIZE, "fpr95", "less",
                reduce="range"),),
          "sklearn's digits upsampled with each Pillow filter; statistic: max - min FPR95 over the filters"),
    Claim("001-odin", "001", "Table 1, Sec. 6", "ODIN is the best of the survey's methods",
          "CIFAR-10, WRN-28-10, FPR95 TinyImageNet crop / resize: ODIN 25.8 / 46.4, Baseline 61.4 / 64.8, "
          "Baseline+T 41.8 / 55.5, BIN 59.6 / 62.0, BINC 50.3 / 58.8, VIB 38.2 / 52.1, VIBY-I 43.5 / 54.1, "
          "VIBY-II 43.2 / 52.2 (Gaussian noise: ODIN and Baseline+T 0.0)",
          _vs("001", ("baseline", "ODIN"), [("baseline", "Baseline"), ("baseline", "Baseline+T"), ("bin", "BIN"),
                                            ("binc", "BINC"), ("vib", "VIB"), ("viby", "VIBY-I"), ("viby", "VIBY-II")],
              FAR, "fpr95", "less"),
          "Gaussian noise, photo crops (TinyImageNet crop) and photo resizes (TinyImageNet resize)"),
    Claim("001-binc", "001", "Table 1", "BINC improves on BIN",
          "AUROC TinyImageNet crop / resize: BINC 93.15 / 90.49, BIN 89.35 / 86.34 (FPR95 worse on noise: 68.0 vs 62.1)",
          _vs("001", ("binc", "BINC"), [("bin", "BIN")], FAR, "auroc", "greater")),
    Claim("001-viby", "001", "Table 1", "VIBY improves on VIB",
          "AUROC TinyImageNet crop / resize: VIBY-I 92.54 / 89.77, VIBY-II 92.85 / 90.03, VIB 85.37 / 83.45",
          (Test(Side("001", "viby", "VIBY-I"), Side("001", "vib", "VIB"), FAR),
           Test(Side("001", "viby", "VIBY-II"), Side("001", "vib", "VIB"), FAR))),
    Claim("002-rg", "002", "Table 1", "RG beats GradNorm and Energy",
          "ImageNet, BiT-S R101x1, mean of 4 sets, AUROC / FPR95: RG 92.17 / 36.90, GradNorm 86.31 / 54.70 "
          "(+5.86 AUROC), Energy 82.74 / 71.03",
          _vs("002", ("plain", "rg"), [("plain", "gradnorm"), ("plain", "energy")], FAR, "auroc", "greater")
          + _vs("002", ("plain", "rg"), [("plain", "gradnorm"), ("plain", "energy")], FAR, "fpr95", "less")),
    Claim("002-uv", "002", "Table 2", "Energy x clipped L1 (RG) is the best U x V pair",
          "mean AUROC: energy x clipped 92.17, GradNorm x clipped 90.54, energy x L1 87.88, GradNorm x L1 86.31, "
          "energy x 1 82.74, 1 x clipped 77.98",
          tuple(Test(Side("002", "plain", "U=energy V=clipped"), Side("002", "plain", f"U={u} V={v}"), FAR)
                for u, v in UV_PAIRS if (u, v) != ("energy", "clipped"))),
    Claim("002-eq4", "002", "Sec. 3.1, eq. 4", "Eq. 4's G (expected gradient norm) is larger for ID data",
          "stated in words only ('G(x) will also be larger than OOD data'); eq. 4's U = 2 sum p(1-p) shrinks "
          "for confident predictions, so the sentence contradicts itself",
          (Test(Side("002", "plain", "eq4_G"), 0.5, FAR),),
          "AUROC of G as an ID-score against chance (0.5); the reversed direction's AUROC is 1 - AUROC"),
    Claim("003-odin", "003", "Sec. 4.2, Sec. 5", "ODIN gives the best results",
          "ImageNet-O: ODIN best AUROC 82.18 (ResNet-152, T 100, eps 0.0024); MSP only plotted",
          _vs("003", ("plain", "odin"), [("plain", "msp"), ("plain", "energy")], FAR, "auroc", "greater")),
    Claim("003-flows", "003", "Sec. 4.4", "The fixed flows do not beat MSP",
          "TinyImageNet vs ImageNet-O, RealNVP AUROC: about 78 (baseline), 74 (+OOD term), 70 (+cyclic masks); "
          "embeddings diverged; no MSP number on that ID set",
          _vs("003", ("plain", "msp"), [("plain", "flow pixels"), ("plain", "flow pixels +OOD"),
                                        ("plain", "flow pixels +OOD cyclic"), ("plain", "flow pixels bottleneck"),
                                        ("plain", "flow embeddings"), ("plain", "flow embeddings +OOD")],
              FAR, "auroc", "greater"),
          "tested as: MSP's AUROC above each flow's"),
    Claim("003-oe", "003", "Table 1", "Energy fine-tuning with outlier exposure improves on Energy",
          "TinyImageNet vs ImageNet-O, fine-tuned WRN: AUROC 70.35, FPR95 87.97; no plain-Energy number printed",
          (Test(Side("003", "energy_oe", "energy"), Side("003", "plain", "energy"), FAR, "auroc", "greater"),
           Test(Side("003", "energy_oe", "energy"), Side("003", "plain", "energy"), FAR, "fpr95", "less")),
          "outliers: crops of photos no test set uses (data.auxiliary_outliers)"),
    Claim("004-near", "004", "Tables 4-5", "G and SG beat MSP, ODIN and max-logit on near OOD by a significant margin",
          "AUROC CIFAR-10 vs TinyImageNet (WRN-28-10): G 0.983, SG 0.981, MSP 0.954, ODIN 0.970, ML 0.965; "
          "ImageNet-O (ResNet-50): G 0.735, SG 0.769, ODIN 0.599, ML 0.564, MSP 0.470",
          tuple(Test(Side("004", "heldout", g), Side("004", "heldout", b), NEAR)
                for g in ("G", "SG") for b in ("msp", "odin", "max_logit")),
          "near OOD: a network trained on classes 0-4, the test images of classes 5-9"),
    Claim("004-tuning", "004", "Tables 6-7", "Tuning T (and eps) improves G over its vanilla form",
          "ImageNet-O, ResNet-18, AUROC: G vanilla 0.517, tuned 0.76",
          (Test(Side("004", "heldout", "G"), Side("004", "heldout", "G T=1 eps=0"), NEAR),)),
    Claim("004-ece", "004", "Sec. 4.1", "A higher temperature improves ECE",
          "stated in words only, on ImageNet-A (no ECE numbers or temperatures printed)", (),
          untested="a calibration claim about ImageNet-A's adversarial images, whose accuracy is near 0; not an "
                   "OOD metric, and the suite has no analogue"),
    Claim("000-T5", "000", "Table 5", "AMP beats a deep ensemble and MC-dropout on the most corrupted images",
          "ImageNet vs Gaussian blur level 5, ResNet-50, AUROC: AMP 99.07, MC-dropout 96.38, Deep ensemble 95.49",
          (Test(Side("000", "anchored", "amp"), Side("ensembles", "ensemble", "confidence"),
                Sets("covariate", f"{BLUR}-5")),
           Test(Side("000", "anchored", "amp"), Side("ensembles", "mc_dropout", "confidence"),
                Sets("covariate", f"{BLUR}-5"))),
          "Fashion-MNIST test images under Gaussian blur, severity 5; the baselines' max mean softmax"),
)
