"""Reference implementations of MI methods: find a method by its paper.

Import every method by its flat name, ``from mi_course.methods import rome``; the files are
grouped on disk by the course's three blocks (``block1_circuits/``, ``block2_knowledge/``,
``block3_features/``), and the few modules every block shares sit here at the top
(``components``: names of hook points and components; ``metrics``; ``toolkit``).

Paper (or idea)                                           module                   week
--------------------------------------------------------  -----------------------  ----
Hooks, losses, patching one activation                    toolkit                  00
Zoom In: An Introduction to Circuits (Olah et al. 2020)   zoom_in                  01
Attention from first principles (Vaswani et al. 2017)     attention                02
A Mathematical Framework (Elhage et al. 2021): QK/OV      circuits                 02
In-context Learning and Induction Heads (Olsson 2022)     induction                02
FFN layers are key-value memories (Geva et al. 2021/22)   ffn_memories             03
Logit lens (nostalgebraist 2020), tuned lens (Belrose)    logit_lens               03
Talking Heads (Merullo et al. 2024)                       talking_heads            04
Ablation: zero, mean, resample (Wang 2023, Chan 2022)     ablation                 05
Activation patching (Vig 2020; Meng 2022; Wang 2023)      activation_patching      05
Path patching (Wang 2023; Goldowsky-Dill 2023)            path_patching            05
Attribution patching (Nanda 2023; Kramar 2024)            attribution_patching     05
Edge attribution patching (Syed et al. 2023)              circuit_discovery        05
ACDC: automatic circuit discovery (Conmy et al. 2023)     acdc                     05
Causal scrubbing (Chan et al. 2022)                       causal_scrubbing         05
Faithfulness, completeness, minimality (Wang 2023)        circuit_evaluation       05
Direct logit attribution (Elhage 2021; Wang 2023)         logit_attribution        05
The IOI circuit's head classes, copying scores (Wang 2023) ioi_circuit              05
Patching metrics (logit difference, normalised)           metrics                  05
Progress measures for grokking (Nanda et al. 2023)        grokking, fourier        06
Crawling the internal knowledge base (Cohen et al. 2023)  knowledge_crawl          07
Linear probes with control tasks (Hewitt & Liang 2019)    probing                  07
Causal tracing (Meng et al. 2022, ROME Figs. 1-3)          causal_tracing           08
ROME: rank-one model editing (Meng et al. 2022)           rome                     08
Edit metrics ES/PS/NS (ROME/MEMIT); FT, FT-L baselines    edit_evaluation          08
MEMIT: mass-editing memory (Meng et al. 2023)            memit                    09
GRACE: lifelong-editing codebook (Hartvigsen et al. 2023) grace                    09
RippleEdits' ripple criteria (Cohen et al. 2024)          ripple_effects           09
Does localization inform editing? (Hase et al. 2023)      localization_vs_editing  10
Components carrying a bias, tuning only them (Chintam     bias_components          10
  et al. 2023): causal mediation over heads and MLPs
Knowledge neurons (Dai et al. 2022); Niu et al. 2024      knowledge_neurons        11
Toy Models of Superposition (Elhage et al. 2022)          toy_models               12
Sparse autoencoders: Towards Monosemanticity (Bricken     sae                      12
  2023) + Anthropic 2024 update (ReLU+L1), TopK (Gao
  2024), BatchTopK (Bussmann 2024), JumpReLU
  (Rajamanoharan 2024); transcoders (Dunefsky 2024)
SAE metrics: L0, explained variance, CE loss recovered    sae_metrics              12
  (Bricken 2023); MMCS (Sharkey 2022), matched cosine
  (SynthSAEBench); random-decoder baseline (Korznikov
  2026)
Feature dashboards: top contexts, activation bands,       feature_stats            12
  logit effects, prompt view (Bricken 2023; SAEDashboard)
Automated interpretability, scoring: detection, fuzzing   autointerp               12
  (Paulo et al. 2024; Bills et al. 2023)
Feature splitting across dictionary sizes (Bricken et     feature_splitting        12
  al. 2023): decoder-cosine family trees, activation
  sharing, beside random decoders
Feature steering: add / clamp an SAE latent (Templeton    steering                 13
  2024); activation addition, difference of means
  (Turner 2023, Rimsky 2024); behaviour vs damage sweep
Sparse feature circuits: node/edge attribution over       sparse_feature_circuits  13
  SAE latents + errors, IG, pruning (Marks et al. 2024)
SHIFT: ablating spurious SAE latents (Marks 2024)         shift                    13
Transcoders: MLP replacement, connections, attributions   transcoders              14
  (Dunefsky et al. 2024)

Block 2 (knowledge, weeks 07-11) and block 3 (features, weeks 12-14) add their modules to
``block2_knowledge/`` and ``block3_features/`` and a row each to this table.
"""

from pathlib import Path as _Path

# The block folders are not packages: they extend this package's search path, so every
# module keeps one flat, paper-named import path (``mi_course.methods.induction``).
__path__ = list(__path__) + [  # noqa: F821  (set by the import system)
    str(_Path(__file__).with_name(block))
    for block in ("block1_circuits", "block2_knowledge", "block3_features")
]
