# GoChat developer entry points. `make run` and `make test` are the two README commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test bench migrate seed protos worker beat flower logic grpc clean faults

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	@echo "installing requirements into $(VENV) (log: $(VENV)/pip.log)"
	@$(VENV)/bin/pip install --disable-pip-version-check -r requirements-dev.txt > $(VENV)/pip.log 2>&1 \
		|| (tail -n 40 $(VENV)/pip.log; exit 1)
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# Embedded default: SQLite, in-process bus/presence/channel layer, eager Celery.
run: seed
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py runserver $(HOST):$(PORT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The fault-injection matrix alone (tests/faults; also part of `make test`), with its table.
faults: install
	$(PY) -m pytest tests/faults -m faults $(PYTEST_ARGS)

bench: install
	$(PY) -m bench

protos: install
	$(PY) -m protos.build

logic: install
	$(PY) manage.py run_logic

grpc: install
	$(PY) manage.py run_grpc

worker: install
	$(VENV)/bin/celery -A gochat_site worker -Q fanout,push,index,default -l info

beat: install
	$(VENV)/bin/celery -A gochat_site beat -l info

flower: install
	$(VENV)/bin/celery -A gochat_site flower --address=127.0.0.1 --port=5555

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
