"""common/runs/submission.py: the exact Kaggle format, checked against sample_submission."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs.submission import build_submission, check_submission, write_submission

MNIST = get_spec("mnist")
SAMPLE = pd.DataFrame({"ImageId": np.arange(1, 6), "Label": 0})


def test_build_follows_the_sample_order_and_columns():
    # test ids given in another order than the sample: labels must follow their ids
    submission = build_submission(MNIST, SAMPLE, np.array([5, 4, 3, 2, 1]), np.array([9, 8, 7, 6, 5]))
    assert list(submission.columns) == ["ImageId", "Label"]
    assert submission["ImageId"].tolist() == [1, 2, 3, 4, 5]
    assert submission["Label"].tolist() == [5, 6, 7, 8, 9]
    check_submission(MNIST, SAMPLE, submission, "s.csv")


@pytest.mark.parametrize(
    "broken, message",
    [
        (lambda s: s.rename(columns={"Label": "label"}), "header is ImageId,label, expected ImageId,Label"),
        (lambda s: s.iloc[:4], "4 rows, expected 5"),
        (lambda s: s.assign(ImageId=[1, 2, 4, 3, 5]), "line 4: id 4, expected 3"),
        (lambda s: s.assign(Label=[1, 2, 10, 3, 4]), "line 4: label 10 is not a digit"),
        (lambda s: s.assign(Label=[1, "x", 1, 3, 4]), "line 3: label 'x' is not a digit"),
    ],
)
def test_broken_submissions_are_refused(broken, message):
    good = SAMPLE.assign(Label=[1, 2, 3, 4, 5])
    with pytest.raises(UserError, match=message):
        check_submission(MNIST, SAMPLE, broken(good), "s.csv")


def test_written_file_is_exactly_the_kaggle_format(tmp_path):
    path = tmp_path / "sub" / "submission.csv"
    write_submission(SAMPLE.assign(Label=[1, 2, 3, 4, 5]), path)
    assert path.read_bytes() == b"ImageId,Label\n1,1\n2,2\n3,3\n4,4\n5,5\n"
    assert not list(path.parent.glob("*.partial"))
