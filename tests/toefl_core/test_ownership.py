"""Owner marks, retired names and fingerprints that never reveal a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from toefl_core.ownership import (
    ITEM_BANK_APPLICATION_ID,
    RETIRED_FILE_NAMES,
    USER_DATA_APPLICATION_ID,
    OwnershipError,
    check_owner,
    identify,
    refuse_retired_name,
    refuse_shared_database,
)


def test_marks_differ_and_are_non_zero() -> None:
    assert ITEM_BANK_APPLICATION_ID != USER_DATA_APPLICATION_ID
    assert ITEM_BANK_APPLICATION_ID and USER_DATA_APPLICATION_ID


@pytest.mark.parametrize("name", sorted(RETIRED_FILE_NAMES))
def test_retired_names_are_refused_naming_the_file_to_use(name: str, tmp_path: Path) -> None:
    with pytest.raises(OwnershipError, match=r"item_bank\.db"):
        refuse_retired_name(f"sqlite:///{tmp_path / name}", use_instead="item_bank.db")


def test_current_names_pass(tmp_path: Path) -> None:
    refuse_retired_name(f"sqlite:///{tmp_path / 'item_bank.db'}", use_instead="item_bank.db")


def test_same_file_same_fingerprint_by_any_spelling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = identify(f"sqlite:///{tmp_path / 'user_data.db'}")
    relative = identify("sqlite:///user_data.db")
    assert absolute.fingerprint == relative.fingerprint
    assert absolute.database_name == "user_data.db"
    assert identify(f"sqlite:///{tmp_path / 'other.db'}").fingerprint != absolute.fingerprint


def test_postgres_fingerprint_ignores_credentials_and_reveals_none() -> None:
    one = identify("postgresql+psycopg://alice:s3cret@db.internal:5432/toefl_users")
    two = identify("postgresql+psycopg://bob:other@DB.internal:5432/toefl_users")
    assert one.fingerprint == two.fingerprint
    assert one.backend == "postgresql" and one.database_name == "toefl_users"
    assert "s3cret" not in repr(one)


def test_check_owner_messages() -> None:
    check_owner("item_bank", expected="item_bank", what="x.db")
    with pytest.raises(OwnershipError, match="no owner mark"):
        check_owner(None, expected="item_bank", what="x.db")
    with pytest.raises(OwnershipError, match="belongs to 'user_data'"):
        check_owner("user_data", expected="item_bank", what="x.db")


def test_shared_database_in_one_environment_is_refused(tmp_path: Path) -> None:
    same = f"sqlite:///{tmp_path / 'item_bank.db'}"
    with pytest.raises(OwnershipError, match="same database"):
        refuse_shared_database({"DATABASE_URL": same, "USER_DATABASE_URL": same})
    refuse_shared_database({"DATABASE_URL": same, "USER_DATABASE_URL": f"sqlite:///{tmp_path / 'user_data.db'}"})
    refuse_shared_database({"DATABASE_URL": same})
