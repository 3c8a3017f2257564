import pytest

from swlab.settings import Settings, SettingsError, client, load_settings

pytestmark = pytest.mark.unit


def test_defaults_without_environment():
    s = load_settings(env={})
    assert (s.target, s.region, s.stack, s.endpoint_url) == ("local", "us-east-1", "swlab", None)


def test_environment_overrides_default_and_argument_overrides_environment():
    env = {
        "SWLAB_TARGET": "local",
        "SWLAB_REGION": "eu-west-1",
        "SWLAB_STACK": "envstack",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
    }
    s = load_settings(env=env)
    assert (s.region, s.stack, s.endpoint_url) == ("eu-west-1", "envstack", "http://127.0.0.1:4566")
    s = load_settings(env=env, stack="argstack", region=None)
    assert s.stack == "argstack" and s.region == "eu-west-1"  # None means "not given"


def test_region_falls_back_to_aws_variables():
    assert load_settings(env={"AWS_DEFAULT_REGION": "ap-south-1"}).region == "ap-south-1"
    assert load_settings(env={"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "x"}).region == "eu-north-1"


def test_aws_target_ignores_a_leftover_local_endpoint():
    s = load_settings(env={"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, target="aws")
    assert s.endpoint_url is None


@pytest.mark.parametrize("bad", [{"target": "gcp"}, {"stack": "Upper"}, {"stack": "9lives"}, {"colour": "red"}])
def test_bad_values_are_refused_with_the_reason(bad):
    with pytest.raises(SettingsError):
        load_settings(env={}, **bad)


def test_local_client_needs_an_endpoint_and_uses_it():
    with pytest.raises(SettingsError, match="start the local cloud"):
        client(load_settings(env={}), "s3")
    c = client(load_settings(env={}, endpoint_url="http://127.0.0.1:9"), "stepfunctions")
    assert c.meta.endpoint_url == "http://127.0.0.1:9"
    assert c.meta.config.inject_host_prefix is False


def test_settings_are_immutable_and_derivable():
    s = Settings()
    with pytest.raises(Exception):
        s.stack = "x"  # type: ignore[misc]
    assert s.with_(stack="other").stack == "other"
