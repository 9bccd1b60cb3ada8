"""Table locations without a server: which URIs are object stores, what the catalog records,
how delta-rs's storage options split into obstore's store and client settings, and GCS (which
has no emulator in this suite, ADR 0006) refusing a bad service account by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from delta2sql.log_store import (
    StorageError,
    default_table_name,
    for_cloud,
    is_object_store_uri,
    open_log,
    split_storage_options,
    table_uri,
    use_storage_options,
)


@pytest.mark.parametrize("uri", ["s3://b/t", "s3a://b/t", "az://c/t", "azure://c/t", "abfs://c@a.dfs.core.windows.net/t",
                                 "abfss://c@a.dfs.core.windows.net/t", "adl://a.azuredatalakestore.net/t", "gs://b/t"])
def test_object_store_uris(uri):
    assert is_object_store_uri(uri)
    assert table_uri(uri + "/") == uri  # recorded without the trailing slash
    assert default_table_name(uri) == "t"


def test_local_paths_and_file_uris(tmp_path):
    table = tmp_path / "sales orders%20é"
    assert not is_object_store_uri(str(table))
    assert table_uri(table) == str(table.resolve())
    assert table_uri("file://" + str(table).replace("%", "%25").replace(" ", "%20")) == str(table.resolve())
    assert default_table_name(table) == "sales orders%20é"
    assert default_table_name("s3://lake/sales%20orders") == "sales orders"
    assert default_table_name("s3://lake") == "lake"


@pytest.mark.parametrize("uri", ["s3://key:secret@lake/t", "abfss://c:pw@a.dfs.core.windows.net/t",
                                 "az://c/t?sv=2024&sig=secret"])
def test_a_uri_with_credentials_is_refused_without_repeating_them(uri):
    with pytest.raises(StorageError, match="carries credentials") as refused:
        table_uri(uri)
    assert "secret" not in str(refused.value) and "pw" not in str(refused.value)


def test_storage_options_split_into_store_and_client_settings():
    config, client = split_storage_options({
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true", "aws_region": "eu-west-1",
        "azure_allow_invalid_certificates": "False", "timeout": "30s", "google_service_account": "/k.json",
    })
    assert config == {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "aws_region": "eu-west-1",
                      "google_service_account": "/k.json"}
    assert client == {"allow_http": True, "allow_invalid_certificates": False, "timeout": "30s"}


@pytest.mark.parametrize(("options", "expected"), [
    ({"google_service_account": "/nonexistent/key.json"}, "Unable to open service account file"),
    ({"google_service_account_key": "{not json"}, "Unable to decode service account"),
])
def test_gcs_refuses_a_bad_service_account_naming_the_uri(options, expected):
    uri = f"gs://bucket/{len(options)}-{expected[:6]}"
    use_storage_options(options, uri=uri)
    with pytest.raises(StorageError, match=expected) as refused:
        open_log(uri)
    assert str(refused.value).startswith(f"{uri}: cannot configure the object store")


def test_an_option_obstore_cannot_take_is_a_clear_error(tmp_path: Path):
    use_storage_options({"AWS_NO_SUCH_OPTION": "1"}, uri="s3://bucket/odd")
    with pytest.raises(StorageError, match="s3://bucket/odd: cannot configure the object store"):
        open_log("s3://bucket/odd")


def test_each_table_gets_its_own_clouds_options():
    options = {"AWS_REGION": "eu-west-1", "azure_storage_account_name": "acct", "google_service_account": "/k.json",
               "timeout": "30s"}
    assert for_cloud(options, "s3://b/t") == {"AWS_REGION": "eu-west-1", "timeout": "30s"}
    assert for_cloud(options, "abfss://c@acct.dfs.core.windows.net/t") == {"azure_storage_account_name": "acct",
                                                                             "timeout": "30s"}
    assert for_cloud(options, "gs://b/t") == {"google_service_account": "/k.json", "timeout": "30s"}
