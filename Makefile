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
	$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT)

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

# Roles that need a real Celery broker stop with what is missing instead of guessing one.
define need_broker
	@if [ -z "$$CELERY_BROKER_URL" ]; then \
		echo "make $@: CELERY_BROKER_URL is not set, so there is no Celery broker to $(1)." >&2; \
		echo "  The embedded default (make run) runs tasks in-process and has none." >&2; \
		echo "  Set it to the broker the workers use, e.g." >&2; \
		echo "    CELERY_BROKER_URL=redis://127.0.0.1:6379/1 make $@" >&2; \
		echo "    CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// make $@" >&2; \
		echo "  (docs/configuration.md, docs/tasks.md)" >&2; \
		exit 2; \
	fi
endef

worker: install
	$(call need_broker,consume from)
	$(VENV)/bin/celery -A gochat_site worker -Q fanout,push,index,default -l info

beat: install
	$(call need_broker,send the schedule to)
	$(VENV)/bin/celery -A gochat_site beat -l info

flower: install
	$(call need_broker,watch)
	$(VENV)/bin/celery -A gochat_site flower --address=127.0.0.1 --port=5555

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
