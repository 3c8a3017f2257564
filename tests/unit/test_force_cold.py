"""Forcing cold starts: on AWS a new configuration (SeBS's way), keeping the function's environment."""

import json

from swlab.provision import cold
from swlab.settings import load_settings


class FakeLambda:
    def __init__(self):
        self.env = {"f": {"A": "1"}}
        self.updates = []
        self.polls = 0

    def get_function_configuration(self, FunctionName):
        self.polls += 1
        status = "InProgress" if self.polls == 2 else "Successful"
        return {"Environment": {"Variables": dict(self.env[FunctionName])}, "LastUpdateStatus": status}

    def update_function_configuration(self, FunctionName, Environment):
        self.updates.append(FunctionName)
        self.env[FunctionName] = Environment["Variables"]


def test_aws_forces_a_new_environment_by_configuration_and_waits_for_it(monkeypatch):
    monkeypatch.setattr(cold.time, "sleep", lambda s: None)
    lam = FakeLambda()
    settings = load_settings(env={}, target="aws", region="eu-west-1")
    assert cold.force_cold(settings, ["f"], lambda_client=lam) == ["f"]
    first = lam.env["f"][cold.NONCE_VARIABLE]
    assert lam.env["f"]["A"] == "1" and lam.updates == ["f"] and lam.polls >= 3
    cold.force_cold(settings, ["f"], lambda_client=lam)
    assert lam.env["f"][cold.NONCE_VARIABLE] != first  # every call a new configuration


def test_local_waits_until_the_functions_are_quiet_then_ends_their_idle_environments(monkeypatch):
    calls = []
    states = iter(["busy", "init", "idle"])

    class Resp:
        def __init__(self, body=b"{}"):
            self.body = body

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self):
            return self.body

    def urlopen(req, timeout):
        if isinstance(req, str):
            calls.append(("GET", req))
            envs = [{"function": "st-resnet", "state": next(states)}, {"function": "other", "state": "busy"}]
            return Resp(json.dumps({"environments": envs}).encode())
        calls.append((req.method, req.full_url))
        return Resp()

    monkeypatch.setattr(cold.urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(cold.time, "sleep", lambda s: None)
    settings = load_settings(env={}, target="local", endpoint_url="http://127.0.0.1:9")
    cold.force_cold(settings, ["st-resnet"])
    # waits while the function's environment is busy or initialising (another function's does not count)
    assert calls == [("GET", "http://127.0.0.1:9/_localcloud/lambda")] * 3 + [
        ("DELETE", "http://127.0.0.1:9/_localcloud/lambda?FunctionName=st-resnet")
    ]
