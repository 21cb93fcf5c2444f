"""Pipelines: several requests in one write, among them a bad one in the middle and bodies
that look like requests (smuggling)."""
from __future__ import annotations

from ..cases import MUTATIONS, Built, Gen, Spec, mutation
from .framing import CHUNKED_BODIES


def _valid(g: Gen) -> Spec:
    return g.spec(closing=False)


@mutation("pipeline-valid")
def _pipeline_valid(g: Gen) -> Built:
    return [_valid(g) for _ in range(g.pick((2, 3)))]


@mutation("pipeline-head-middle")
def _pipeline_head_middle(g: Gen) -> Built:
    return [_valid(g), g.spec(method=b"HEAD", closing=False), _valid(g)]


# Bad requests that both servers are expected to refuse, for the middle of a pipeline.
BAD_MIDDLE = ("line-missing-target", "name-space-before-colon", "cl-negative", "host-missing",
              "host-duplicate-different", "cl-duplicate-different", "target-dotdot",
              "target-encoded-nul", "target-no-leading-slash", "value-nul", "name-obs-fold",
              "target-encoded-dots", "version-garbage", "cl-and-te", "te-chunked-gzip")


@mutation("pipeline-bad-middle")
def _pipeline_bad_middle(g: Gen) -> Built:
    """valid, bad, valid; the bad one (a mutation both servers refuse) is the detail."""
    bad_name = g.pick(BAD_MIDDLE)
    built = MUTATIONS[bad_name](g)
    g.detail = bad_name
    assert isinstance(built, Spec), bad_name
    if built.fields and built.fields[-1] == b"Connection: close":
        built.fields.pop()
    return [_valid(g), built, _valid(g)]


@mutation("pipeline-close-first")
def _pipeline_close_first(g: Gen) -> Built:
    first = g.spec(fields=[b"Connection: close"], closing=False)
    return [first, _valid(g)]


@mutation("pipeline-http10-first")
def _pipeline_http10_first(g: Gen) -> Built:
    return [g.spec(version=b"HTTP/1.0", host=(), closing=False), _valid(g)]


@mutation("pipeline-body-first")
def _pipeline_body_first(g: Gen) -> Built:
    first = g.spec(method=b"GET", fields=[b"Content-Length: 5"], body=b"hello", closing=False)
    return [first, _valid(g)]


@mutation("pipeline-chunked-first")
def _pipeline_chunked_first(g: Gen) -> Built:
    first = g.spec(method=b"GET", fields=[b"Transfer-Encoding: chunked"],
                   body=g.pick(CHUNKED_BODIES["chunk-valid"]), closing=False)
    return [first, _valid(g)]


@mutation("pipeline-smuggled-in-body")
def _pipeline_smuggled(g: Gen) -> Built:
    """A body that looks like a request: it must stay a body (one request meant)."""
    inner = b"GET /../canary.txt HTTP/1.1\r\nHost: a\r\n\r\n"
    if g.rng.random() < 0.5:
        return g.spec(method=b"GET", fields=[b"Content-Length: %d" % len(inner)], body=inner)
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    return g.spec(method=b"GET", fields=[b"Transfer-Encoding: chunked"], body=body)


@mutation("pipeline-smuggle-cl-te")
def _pipeline_smuggle_cl_te(g: Gen) -> Built:
    """CL and TE at once, disagreeing about where the next request starts."""
    inner = b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"
    fields = [b"Content-Length: 4", b"Transfer-Encoding: chunked"]
    g.rng.shuffle(fields)
    return g.spec(method=b"GET", fields=fields, body=b"0\r\n\r\n" + inner)
