# Price-optimisation models on BentoML. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install.stamp
BUDGET ?= standard
BENTOS ?= bentos
BACKEND ?= docker
BENTO ?= pricing:latest

.PHONY: help install test audit train train-smoke serve build containerize image-test bench loadtest fuzz chaos soak lint format clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

test: $(STAMP) ## run the test suite (unit, data, model, integration)
	$(BIN)/pytest

audit: $(STAMP) ## pip-audit the pinned dependencies (accepted findings: security/accepted-vulnerabilities.toml); fails when no vulnerability service answers
	$(BIN)/python security/audit.py $(AUDIT_ARGS)

train: $(STAMP) ## train all five families (BUDGET=smoke|standard|full) into the BentoML model store
	$(BIN)/python train.py --budget $(BUDGET)

train-smoke: $(STAMP) ## train on a small synthetic data set in about a minute
	$(BIN)/python train.py --budget smoke

serve: $(STAMP) ## serve on :3000 (PRICING_PORT), training the smoke budget first if no model is stored
	@$(BIN)/python -m pricing.registry || $(BIN)/python train.py --budget smoke
	$(BIN)/bentoml serve service:Pricing --port $${PRICING_PORT:-3000}

build: $(STAMP) ## bentoml build, then export bentos/pricing-<version>.bento (BENTOS=dir) with the models
	@$(BIN)/python -m pricing.registry >/dev/null || { echo "make build: no trained models in the store (BENTOML_HOME): run make train first" >&2; exit 1; }
	@mkdir -p $(BENTOS)
	@tag=$$($(BIN)/bentoml build --output tag | sed -n 's/^__tag__://p') && test -n "$$tag" && \
	  $(BIN)/bentoml export "$$tag" "$(abspath $(BENTOS))/$${tag/:/-}.bento" >/dev/null && \
	  echo "built $$tag: $(BENTOS)/$${tag/:/-}.bento"

containerize: $(STAMP) ## bentoml containerize pricing:latest (BACKEND=docker|podman|buildah, BENTO=tag, CONTAINERIZE_ARGS)
	$(BIN)/bentoml containerize $(BENTO) --backend $(BACKEND) $(CONTAINERIZE_ARGS)

image-test: $(STAMP) ## build the image with podman/buildah and run it as SageMaker and Lambda here; reports/image/
	$(BIN)/python tests/image/run.py $(IMAGE_TEST_ARGS)

# make bench / make loadtest BENCH_DATA=<transactions file>: a model store of that file's own under build/stores/
# (trained with the standard budget when empty) and reports under reports/<bench|loadtest>-<file name>/.
# Without it: the current BENTOML_HOME (the smoke budget trained when empty) and reports/bench/, reports/loadtest/.
ifdef BENCH_DATA
BENCH_NAME := $(firstword $(subst ., ,$(notdir $(BENCH_DATA))))
export BENTOML_HOME := $(abspath build/stores/$(BENCH_NAME))
BENCH_TRAIN := $(BIN)/python train.py --data $(BENCH_DATA) --budget standard --data-dir build/stores/$(BENCH_NAME)/data \
  --reports-dir reports/train-$(BENCH_NAME)
BENCH_OUT := --out reports/bench-$(BENCH_NAME)
LOADTEST_OUT := --reports-dir reports/loadtest-$(BENCH_NAME)
else
BENCH_TRAIN := $(BIN)/python train.py --budget smoke
endif

bench: $(STAMP) ## sweep, context, cold-start and HTTP benchmarks, web page (BENCH_DATA=file: its own store); reports/bench/
	@$(BIN)/python -m pricing.registry >/dev/null || $(BENCH_TRAIN)
	$(BIN)/python bench/sweep.py $(BENCH_OUT)
	$(BIN)/python bench/context.py $(BENCH_OUT)
	$(BIN)/python bench/cold_start.py $(BENCH_OUT)
	$(BIN)/python bench/http_sweep.py $(BENCH_OUT)
	$(BIN)/python bench/ui_page.py

loadtest: $(STAMP) ## Locust ramp-up load test (LOADTEST_HOST=url: a running server; BENCH_DATA=file); reports/loadtest/
	@test -n "$$LOADTEST_HOST" || $(BIN)/python -m pricing.registry >/dev/null || $(BENCH_TRAIN)
	$(BIN)/python loadtests/run.py $(LOADTEST_OUT) $(LOADTEST_ARGS)

fuzz: $(STAMP) ## Schemathesis over the served /docs.json, more examples than make test (FUZZ_ARGS); reports/fuzz/
	@$(BIN)/python -m pricing.registry >/dev/null || $(BENCH_TRAIN)
	$(BIN)/python -m tests.integration.test_fuzz $(FUZZ_ARGS)

chaos: $(STAMP) ## faults under the Locust ramp: Redis killed, primary failing, worker killed, cache full (CHAOS_ARGS); reports/chaos/
	@$(BIN)/python -m pricing.registry >/dev/null || $(BENCH_TRAIN)
	$(BIN)/python loadtests/chaos.py $(CHAOS_ARGS)

SOAK_MINUTES ?= 30
soak: $(STAMP) ## the ramp, then full load for SOAK_MINUTES (30); RSS of the service tree must not grow; reports/soak/
	@$(BIN)/python -m pricing.registry >/dev/null || $(BENCH_TRAIN)
	$(BIN)/python loadtests/soak.py --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## remove generated data, reports and caches (not the model store)
	rm -rf data reports .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

# ---------------------------------------------------------------------------------------------------
# AWS release (docs/DEPLOY.md). Options go in CLOUD_ARGS, e.g. CLOUD_ARGS="--region eu-west-1 --role-arn ARN";
# region, profile and endpoint also come from AWS_REGION, AWS_PROFILE and AWS_ENDPOINT_URL.
STOCKCODE ?= 85123A
CDK := cd infra && PATH="$(abspath $(BIN)):$$PATH" JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 npx --yes aws-cdk@2

.PHONY: push-image deploy-sagemaker deploy-lambda invoke cloud-status teardown upload-artifacts release-gate infra-synth infra-deploy

push-image: $(STAMP) ## create the ECR repository if missing, push pricing:<bento version> (CLOUD_ARGS)
	$(BIN)/python -m pricing.cloud push-image $(CLOUD_ARGS)

deploy-sagemaker: $(STAMP) ## create or update the SageMaker endpoint (serverless 1024 MB, concurrency 5) and wait
	$(BIN)/python -m pricing.cloud deploy-sagemaker $(CLOUD_ARGS)

deploy-lambda: $(STAMP) ## create or update the Lambda function, alias and function URL (or --front-door http-api)
	$(BIN)/python -m pricing.cloud deploy-lambda $(CLOUD_ARGS)

invoke: $(STAMP) ## sweep STOCKCODE on the deployed service (CLOUD_ARGS=--sagemaker | --lambda | --url URL)
	$(BIN)/python -m pricing.cloud invoke --stockcode $(STOCKCODE) $(CLOUD_ARGS)

cloud-status: $(STAMP) ## what the release commands deployed (ECR, SageMaker, Lambda)
	$(BIN)/python -m pricing.cloud status $(CLOUD_ARGS)

teardown: $(STAMP) ## delete the SageMaker endpoint and Lambda function the commands made (CLOUD_ARGS=--ecr --force: the repository too)
	$(BIN)/python -m pricing.cloud teardown $(CLOUD_ARGS)

upload-artifacts: $(STAMP) ## feature store and bento archive to S3 (CLOUD_ARGS="--bucket B --features data/features --bento pricing:latest")
	$(BIN)/python -m pricing.cloud upload-artifacts $(CLOUD_ARGS)

release-gate: $(STAMP) ## the release gate on reports/metrics.json (the primary model must beat the baselines)
	$(BIN)/python -m pricing.cloud gate $(CLOUD_ARGS)

infra-synth: $(STAMP) ## synthesise the CDK app into infra/cdk.out and lint it with cfn-lint (CDK_ARGS="-c key=value")
	$(CDK) synth --quiet $(CDK_ARGS)
	$(BIN)/cfn-lint infra/cdk.out/*.template.json

infra-deploy: $(STAMP) ## cdk deploy the stacks (CDK_ARGS="PricingBase -c github_repo=OWNER/REPO"; default --all)
	$(CDK) deploy $(or $(CDK_ARGS),--all)
