import pkgutil

import pytest

import sleuth.parsers as parsers


def test_every_parser_module_is_registered():
    modules = {m.name for m in pkgutil.iter_modules(parsers.__path__)} - parsers.NOT_PARSERS
    registered = {module.__name__.rsplit(".", 1)[1] for module in parsers.REGISTRY.values()}
    assert modules == registered


def test_registry_rejects_duplicate_names():
    from sleuth.parsers import cloudtrail

    with pytest.raises(ValueError, match="two parsers"):
        parsers._build_registry((cloudtrail, cloudtrail))


def test_sniffing_is_by_content():
    assert parsers.detect(b'{"Records":[{"eventVersion":"1.08"') is not None
    assert parsers.detect(b'{"Events": [{"CloudTrailEvent": "{}"}]}') is not None
    assert parsers.detect(b"2 123456789012 eni-1 10.0.0.1 10.0.0.2 22 80 6 1 40 1 2 ACCEPT OK").NAME == "vpcflow"
    assert parsers.detect(b'{"Findings": []}').NAME == "guardduty"
    assert parsers.detect(b'{"hello": "world"}') is None
