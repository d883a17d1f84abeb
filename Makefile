# The two commands of the README: `make run` (the main job) and `make test`.
# Both create a local virtual environment once (.venv) and reuse it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch and torchvision pinned to the builds this project is tested with;
# override (e.g. TORCH="torch torchvision") to keep your own CUDA build.
TORCH ?= torch==2.14.1 torchvision==0.29.1
ATTACK ?= pgd-local

.PHONY: run reference test faults regress headline heldout defences families cards report venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]' -c constraints.txt
	touch $@

# The main job writes results/$(ATTACK)/ (not committed); `make reference` regenerates the
# committed results/reference/ deliberately, from scratch.
run: venv
	$(PY) -m protobench.run --attack $(ATTACK)

reference: venv
	$(PY) -m protobench.run --attack pgd-local --out results/reference --fresh

# The committed suites are computed on one torch thread: another thread count sums floats in
# another order, which can tip a pair's sign step and move a rate by one pair.
SUITE_THREADS ?= 1

# The README's headline table (committed) and its check on unseen images (not committed).
HEADLINE_ATTACKS := pgd-local pgd-local-kept auto-local pgd-head-on-stomach pgd-head-on-object
headline: venv
	$(PY) -m protobench.run --suite headline --attack $(HEADLINE_ATTACKS) --out results/headline --fresh \
		--threads $(SUITE_THREADS)

heldout: venv
	$(PY) -m protobench.run --suite heldout --attack $(HEADLINE_ATTACKS) --out results/heldout --no-figures \
		--threads $(SUITE_THREADS)

# What each defence buys and costs: the defended synth models beside their twins (committed).
# Then the JPEG experiment's explanation figure of the README, drawn from the current checkpoint.
defences: venv
	$(PY) -m protobench.run --suite defences --out results/defences --fresh --threads $(SUITE_THREADS)
	$(PY) -m protobench.explain --model synth-jpeg-30 --image 7 --jpeg 20 --top-k 3 \
		--out results/defences/figures/jpeg-synth-jpeg-30-test7.png

# Every prototype family (ProtoPNet, ProtoPool, PIP-Net) under the headline attacks (committed).
families: venv
	$(PY) -m protobench.run --suite families --out results/families --fresh --threads $(SUITE_THREADS)

# A card per committed checkpoint (models/cards/NAME.md, committed): what it is, how it was
# trained, how good it is; written again whenever a checkpoint changes (a test checks its sha256).
cards: venv
	for model in $$(git ls-files 'models/*.pt'); do \
		$(PY) -m protobench.evaluate --model $$(basename $$model .pt) --card || exit 1; done

# A page per committed run (RUN_DIR/report.html) and the leaderboard across them
# (results/leaderboard.html); regenerated, not committed.
report: venv
	$(PY) -m protobench.report --leaderboard results/reference results/headline results/families results/defences

test: venv
	$(PY) -m pytest -q

# The fault matrix alone (also part of `make test`): kill and resume, full disk, stale code,
# claimed folders, bad baselines, bad images, unsafe checkpoints. CI runs it first.
faults: venv
	$(PY) -m pytest -q -m faults

clean:
	rm -rf $(VENV) *.egg-info

# The CI regression gate: the small fixed configuration against results/baselines/ci.csv,
# computed afresh (a resumed run could hold numbers of older code).
regress: venv
	rm -rf results/ci
	$(PY) -m protobench.run --suite ci --out results/ci --quiet --no-figures
	$(PY) -m protobench.regress results/ci --baseline results/baselines/ci.csv
