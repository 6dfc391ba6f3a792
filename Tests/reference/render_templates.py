#!/usr/bin/env python3
"""Renders chat templates with Python's jinja2 in the environment Hugging Face transformers uses
for chat templates (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, a
tojson without HTML escaping, raise_exception, strftime_now): the independent reference for
Tern's Jinja interpreter.

usage: render_templates.py TEMPLATES_DIR CONVERSATIONS.json
Prints JSON: {"<template>/<conversation>": {"ok": text} | {"raised": message} | {"error": type}}
"""
import json, os, sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Raised(Exception):
    pass


def raise_exception(message):
    raise Raised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda f: datetime.now().strftime(f)

tdir, convs = sys.argv[1], json.load(open(sys.argv[2]))
out = {}
for name in sorted(os.listdir(tdir)):
    src = open(os.path.join(tdir, name)).read()
    t = env.from_string(src)
    for c in convs:
        key = f"{name}/{c['name']}"
        try:
            extra = {"tools": c["tools"]} if "tools" in c else {}
            out[key] = {"ok": t.render(messages=c["messages"], add_generation_prompt=c.get("add_generation_prompt", True),
                                       bos_token="<s>", eos_token="</s>", **extra)}
        except Raised as e:
            out[key] = {"raised": str(e)}
        except Exception as e:
            out[key] = {"error": type(e).__name__ + ": " + str(e)}
json.dump(out, sys.stdout, ensure_ascii=False)
