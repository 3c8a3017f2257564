"""Forcing cold starts: on AWS a new configuration (SeBS's way), keeping the function's environment."""

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


def test_local_ends_the_functions_idle_environments(monkeypatch):
    calls = []

    class Resp:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self):
            return b"{}"

    monkeypatch.setattr(
        cold.urllib.request, "urlopen", lambda req, timeout: calls.append((req.method, req.full_url)) or Resp()
    )
    settings = load_settings(env={}, target="local", endpoint_url="http://127.0.0.1:9")
    cold.force_cold(settings, ["st-resnet"])
    assert calls == [("DELETE", "http://127.0.0.1:9/_localcloud/lambda?FunctionName=st-resnet")]
