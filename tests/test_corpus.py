import csv
import json
import warnings

import pytest

from clusteragent.errors import CorpusError
from clusteragent.tools.corpus import as_corpus, from_dataframe, from_texts, load_corpus, sample_corpus_path

RECORDS = [
    {"id": "a", "text": "refund my order", "lang": "en"},
    {"id": "b", "text": "where is my parcel", "lang": "en"},
    {"id": "c", "text": "mi tarjeta no funciona", "lang": "es"},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)
    return path


def check_records(corpus, with_ids=True):
    assert corpus.texts == [r["text"] for r in RECORDS]
    if with_ids:
        assert corpus.ids == [r["id"] for r in RECORDS]


def test_jsonl_with_id_field(tmp_path):
    corpus = load_corpus(write_jsonl(tmp_path / "c.jsonl", RECORDS), id_field="id")
    check_records(corpus)
    assert corpus.extra[2] == {"lang": "es"}


def test_jsonl_ids_default_to_line_numbers_and_skip_blank_lines(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"text": "a"}) + "\n\n" + json.dumps({"text": "b"}) + "\n")
    corpus = load_corpus(path)
    assert corpus.ids == [1, 3] and corpus.id_field is None


def test_a_field_named_id_gives_the_ids_with_their_type_kept(tmp_path):
    rows = [{"id": 17, "text": "x"}, {"id": 4, "text": "y"}, {"id": 99, "text": "z"}]
    corpus = load_corpus(write_jsonl(tmp_path / "c.jsonl", rows))
    assert corpus.ids == [17, 4, 99] and all(type(i) is int for i in corpus.ids)
    assert corpus.id_field == "id" and corpus.extra == [{}, {}, {}]
    assert load_corpus(write_jsonl(tmp_path / "s.jsonl", RECORDS)).ids == ["a", "b", "c"]
    assert load_corpus(write_csv(tmp_path / "c.csv", RECORDS)).ids == ["a", "b", "c"]


def test_a_repeated_id_in_the_id_field_is_an_error_even_when_not_asked_for(tmp_path):
    rows = [{"id": 1, "text": "x"}, {"id": 2, "text": "y"}, {"id": 1, "text": "z"}]
    with pytest.raises(CorpusError, match=r"duplicate ids in field 'id': 1;.*--id-field"):
        load_corpus(write_jsonl(tmp_path / "c.jsonl", rows))


def test_a_record_without_the_id_field_is_named(tmp_path):
    rows = [{"id": "a", "text": "x"}, {"text": "y"}]
    with pytest.raises(CorpusError, match=r"record 2 has no 'id'.*--id-field"):
        load_corpus(write_jsonl(tmp_path / "c.jsonl", rows))


def test_texts_from_a_field_other_than_text_are_announced(tmp_path):
    from clusteragent.tools.corpus import FieldChoiceWarning

    path = write_jsonl(tmp_path / "c.jsonl", [{"body": "refund please", "n": 1}, {"body": "lost card", "n": 2}])
    with pytest.warns(FieldChoiceWarning, match=r"no 'text' field; clustering the field 'body'"):
        corpus = load_corpus(path)
    assert corpus.texts == ["refund please", "lost card"] and corpus.text_field == "body"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_corpus(path, text_field="body").text_field == "body"  # asked for: nothing to say
        assert load_corpus(write_jsonl(tmp_path / "t.jsonl", RECORDS)).text_field == "text"


def test_json_array(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(RECORDS))
    check_records(load_corpus(path, id_field="id"))


def test_json_object_holding_the_records(tmp_path):
    """An export or an API answer wraps its records ({"data": [...]}, pretty-printed): they are the corpus."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"meta": {"count": 3}, "data": RECORDS}, indent=2))
    check_records(load_corpus(path, id_field="id"))
    one = write_jsonl(tmp_path / "one.jsonl", RECORDS[:1])  # a one-line JSONL file is one record, not a wrapper
    assert load_corpus(one).texts == [RECORDS[0]["text"]]
    tagged = write_jsonl(tmp_path / "tagged.jsonl", [{"id": 1, "tags": ["a", "b"], "opinion": "Great camera"}])
    assert load_corpus(tagged, text_field="opinion").texts == ["Great camera"]
    with pytest.warns(UserWarning, match="clustering the field 'opinion'"):  # its one field of words, not its tags
        assert load_corpus(tagged).texts == ["Great camera"]


def test_csv_saved_with_semicolons_is_read_by_its_header(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id;text;stars\n1;Great camera, really;5\n2;Battery died fast;1\n", encoding="utf-8-sig")
    corpus = load_corpus(path, id_field="id")
    assert corpus.texts == ["Great camera, really", "Battery died fast"] and corpus.ids == ["1", "2"]
    assert corpus.extra == [{"stars": "5"}, {"stars": "1"}]


@pytest.mark.parametrize("content, hint", [
    ("id,text\n1,hello, there\n2,good bye\n", "row 1 (counted below the header) has more fields than the header's "
                                               "2 fields; a text with a ',' in it needs double quotes around it."),
    ("text\nfine\nhello, there\nthis, and, that\n", "rows 2, 3 (counted below the header) have more fields than the "
                                                    "header's 1 field; a text with a ',' in it needs double quotes "
                                                    "around it; or, with one text a line, save it as .txt."),
])
def test_csv_row_with_more_fields_than_the_header_is_an_error_not_a_cut_text(tmp_path, content, hint):
    path = tmp_path / "c.csv"
    path.write_text(content)
    with pytest.raises(CorpusError) as e:
        load_corpus(path)
    assert str(e.value) == f"{path}: {hint}"


def test_csv_and_tsv(tmp_path):
    check_records(load_corpus(write_csv(tmp_path / "c.csv", RECORDS), id_field="id"))
    check_records(load_corpus(write_csv(tmp_path / "c.tsv", RECORDS, "\t"), id_field="id"))
    no_ids = [{k: v for k, v in r.items() if k != "id"} for r in RECORDS]
    assert load_corpus(write_csv(tmp_path / "n.csv", no_ids)).ids == [1, 2, 3]


def test_csv_with_quoted_newline_keeps_one_record(tmp_path):
    rows = [{"text": "line one\nline two"}, {"text": "second"}]
    corpus = load_corpus(write_csv(tmp_path / "c.csv", rows))
    assert corpus.texts == ["line one\nline two", "second"]


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(RECORDS), tmp_path / "c.parquet")
    check_records(load_corpus(tmp_path / "c.parquet", id_field="id"))


def test_plain_text(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("".join(r["text"] + "\n" for r in RECORDS) + "\n\n")
    corpus = load_corpus(path)
    check_records(corpus, with_ids=False)
    assert corpus.ids == [1, 2, 3]


def test_text_field_option(tmp_path):
    rows = [{"body": "x one", "text_len": 5}, {"body": "y two", "text_len": 5}]
    assert load_corpus(write_jsonl(tmp_path / "c.jsonl", rows), text_field="body").texts == ["x one", "y two"]


def test_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("name,content", [("e.jsonl", ""), ("e.txt", "\n\n"), ("e.csv", ""), ("h.csv", "text\n")])
def test_empty_corpus(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(CorpusError, match="empty"):
        load_corpus(tmp_path / name)


def test_a_spreadsheets_text_and_id_columns_are_found_in_any_case(tmp_path):
    from clusteragent.tools.corpus import FieldChoiceWarning

    path = tmp_path / "reviews.csv"
    path.write_text('ID,Text,Stars\nr1,"Great food, slow service",4\nr2,Cold soup,1\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Text" is the text field: nothing to announce
        corpus = load_corpus(path)
    assert (corpus.text_field, corpus.id_field, corpus.ids) == ("Text", "ID", ["r1", "r2"])
    path.write_text("Review,Stars\nGreat food,4\nCold soup,1\n")
    with pytest.warns(FieldChoiceWarning, match=r"clustering the field 'Review'"):
        assert load_corpus(path).texts == ["Great food", "Cold soup"]


def test_missing_field_names_the_fields_that_exist(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", RECORDS)
    with pytest.raises(CorpusError, match=r"no text field 'body'.*'id', 'text', 'lang'"):
        load_corpus(path, text_field="body")
    with pytest.raises(CorpusError, match=r"no id field 'key'"):
        load_corpus(path, id_field="key")


def test_no_default_text_field_asks_for_one_unless_one_field_alone_holds_words(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"msg": "x", "topic": "y"}])
    with pytest.raises(CorpusError, match=r"pass --text-field, one of 'msg', 'topic'"):
        load_corpus(path)
    sheet = tmp_path / "r.csv"
    sheet.write_text("ID,Review Text,Stars\nr1,Great food,5\nr2,Cold soup and a long wait,1\nr3,,3\n")
    with pytest.raises(CorpusError, match="1 blank text, id 'r3'"):  # the column found, its blank named
        load_corpus(sheet)
    sheet.write_text("ID,Review Text,Stars\nr1,Great food,5\nr2,Cold soup and a long wait,1\n")
    with pytest.warns(UserWarning, match="clustering the field 'Review Text'"):
        corpus = load_corpus(sheet)
    assert corpus.texts == ["Great food", "Cold soup and a long wait"] and corpus.ids == ["r1", "r2"]


def test_of_several_fields_of_words_the_one_with_spaces_is_the_text_not_a_slug(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"slug": f"t3-cats-{i}", "post_title": f"My {i} cats sleep all day", "upvotes": i} for i in range(5)]
    pq.write_table(pa.Table.from_pylist(rows), path := tmp_path / "posts.parquet")
    with pytest.warns(UserWarning, match="clustering the field 'post_title'"):
        corpus = load_corpus(path)
    assert corpus.texts[1] == "My 1 cats sleep all day" and corpus.extra[1] == {"slug": "t3-cats-1", "upvotes": 1}
    both = write_jsonl(tmp_path / "both.jsonl", [{"headline": "Cats at night", "summary": "They sleep"},
                                                 {"headline": "Dogs and me", "summary": "They bark"}])
    with pytest.raises(CorpusError, match="one of 'headline', 'summary'"):  # words with spaces in both: the user says
        load_corpus(both)


def test_a_field_named_as_an_id_with_unique_values_gives_the_ids(tmp_path):
    """An export's "tweet_id" is what the results join back on; line numbers would lose it."""
    import pandas as pd

    from clusteragent.tools.corpus import FieldChoiceWarning

    sheet = tmp_path / "tweets.csv"
    sheet.write_text("tweet_id,user_id,paid,text\n5703061,u1,a1,Lost my bag\n5703062,u1,a2,Flight late again\n")
    with pytest.warns(FieldChoiceWarning, match="ids from the field 'tweet_id'"):
        corpus = load_corpus(sheet)  # "user_id" repeats, "paid" only ends in "id"
    assert corpus.ids == ["5703061", "5703062"] and corpus.extra[0] == {"user_id": "u1", "paid": "a1"}
    assert load_corpus(sheet, id_field="paid").ids == ["a1", "a2"]
    twice = write_jsonl(tmp_path / "twice.jsonl", [{"postId": 7, "_id": "x", "text": "a"},
                                                   {"postId": 8, "_id": "y", "text": "b"}])
    assert load_corpus(twice).ids == [1, 2]  # two fields could be the ids: line numbers, the user may choose
    frame = pd.DataFrame({"tweet_id": [5, 6], "text": ["a", "b"]}, index=["r1", "r2"])
    assert load_corpus(frame).ids == ["r1", "r2"]  # a DataFrame's index is what results join back on


def test_record_lacking_the_text_field_is_named(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "x"}, {"other": "y"}])
    with pytest.raises(CorpusError, match="the record on line 2 has no field 'text'"):
        load_corpus(path)


def test_blank_texts_list_their_ids(tmp_path):
    rows = [{"id": "a", "text": "ok"}, {"id": "b", "text": "   "}, {"id": "c", "text": ""}, {"id": "d", "text": None}]
    with pytest.raises(CorpusError, match="3 blank texts, ids 'b', 'c', 'd'"):
        load_corpus(write_jsonl(tmp_path / "c.jsonl", rows), id_field="id")


def test_duplicate_ids_are_listed(tmp_path):
    rows = [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"id": "a", "text": "z"}]
    with pytest.raises(CorpusError, match=r"duplicate ids in field 'id': 'a'"):
        load_corpus(write_jsonl(tmp_path / "c.jsonl", rows), id_field="id")


def test_int_and_str_ids_that_print_the_same_collide():
    with pytest.raises(CorpusError, match="duplicate ids"):
        from_texts(["x", "y"], ids=[7, "7"])


def test_long_error_lists_are_bounded():
    with pytest.raises(CorpusError, match=r"and 5 more"):
        from_texts([" "] * 15)


def test_invalid_json_line_gives_the_line_number(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "ok2"}\n{"text": broken}\n')
    with pytest.raises(CorpusError, match=r"line 3 is not valid JSON"):
        load_corpus(path)


def test_lines_that_are_not_utf8_are_read_as_windows_1252_with_a_warning_and_nothing_lost(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("caf\u00e9 ok\n".encode() + "na\u00efve cr\u00e8me \u2013 \u20ac5".encode("cp1252") + b"\n"
                     + b"odd \x81 byte\n" + b"third\n")
    with pytest.warns(UnicodeWarning, match=r"lines 2, 3 are not UTF-8 .*line 2 reads 'na\u00efve cr\u00e8me"):
        corpus = load_corpus(path)
    assert corpus.texts == ["caf\u00e9 ok", "na\u00efve cr\u00e8me \u2013 \u20ac5", "odd \x81 byte", "third"]


def test_a_given_encoding_reads_the_whole_file_and_a_byte_it_cannot_read_names_its_line(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes("text\n\u6771\u4eac\u306e\u5929\u6c17\n\u5927\u962a\n".encode("shift_jis"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_corpus(path, encoding="shift_jis").texts == ["\u6771\u4eac\u306e\u5929\u6c17", "\u5927\u962a"]
    with pytest.raises(CorpusError, match=r"line 2 cannot be read as utf-8 \(byte 0x93\)"):
        load_corpus(path, encoding="utf-8")
    with pytest.raises(CorpusError, match="unknown encoding 'klingon'"):
        load_corpus(path, encoding="klingon")


def test_utf16_with_its_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes("id\ttext\n1\tna\u00efve\n2\t\u00fcber\n".encode("utf-16"))
    assert load_corpus(path).texts == ["na\u00efve", "\u00fcber"]


def test_utf8_bom_is_not_part_of_the_first_field(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"\xef\xbb\xbftext\nhello\n")
    assert load_corpus(path).texts == ["hello"]


def test_unknown_extension(tmp_path):
    (tmp_path / "c.docx").write_text("x")
    with pytest.raises(CorpusError, match="unknown extension"):
        load_corpus(tmp_path / "c.docx")


def test_an_excel_workbook_gives_its_first_sheet_rows_numbered_below_the_header(tmp_path):
    import pandas as pd

    path = tmp_path / "c.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame(RECORDS).to_excel(book, sheet_name="tickets", index=False)
        pd.DataFrame({"text": ["not this one"]}).to_excel(book, sheet_name="notes", index=False)
    with pytest.warns(UserWarning, match="first of its 2 sheets, 'tickets'"):
        corpus = load_corpus(path, id_field="id")
    check_records(corpus)
    assert corpus.extra == [{"lang": "en"}, {"lang": "en"}, {"lang": "es"}]
    pd.DataFrame({"n": [7, 8, 9], "text": ["a", None, "c"]}).to_excel(tmp_path / "blank.xlsx", index=False)
    with pytest.raises(CorpusError, match="1 blank text, id 8"):
        load_corpus(tmp_path / "blank.xlsx", id_field="n")
    with pytest.raises(CorpusError, match="1 blank text, id 2"):  # no id field: rows numbered below the header
        load_corpus(tmp_path / "blank.xlsx")
    (tmp_path / "bad.xlsx").write_text("not a workbook")
    with pytest.raises(CorpusError, match="cannot read as an Excel workbook"):
        load_corpus(tmp_path / "bad.xlsx")


@pytest.mark.parametrize("suffix, pack", [(".gz", "gzip"), (".bz2", "bz2"), (".xz", "lzma")])
@pytest.mark.parametrize("kind", ["jsonl", "csv", "txt", "parquet"])
def test_compressed_files_read_as_their_inner_extension(tmp_path, suffix, pack, kind):
    import importlib

    plain = tmp_path / f"c.{kind}"
    if kind == "jsonl":
        write_jsonl(plain, RECORDS)
    elif kind == "csv":
        write_csv(plain, RECORDS)
    elif kind == "txt":
        plain.write_text("".join(r["text"] + "\n" for r in RECORDS))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(RECORDS), plain)
    packed = tmp_path / f"c.{kind}{suffix}"
    packed.write_bytes(importlib.import_module(pack).compress(plain.read_bytes()))
    corpus = load_corpus(packed)
    check_records(corpus, with_ids=kind != "txt")
    assert corpus.extra == load_corpus(plain).extra


def test_a_damaged_compressed_file_says_so(tmp_path):
    (tmp_path / "c.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CorpusError, match="cannot decompress it as gz"):
        load_corpus(tmp_path / "c.jsonl.gz")
    (tmp_path / "c.gz").write_bytes(b"x")
    with pytest.raises(CorpusError, match="unknown extension"):
        load_corpus(tmp_path / "c.gz")


def test_a_folder_of_text_files_gives_one_text_per_file_with_its_path_as_id(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "a10.txt").write_text("ten\nlines kept whole\n")
    (tmp_path / "a2.md").write_text("# two")
    (tmp_path / "b" / "x.TXT").write_text("in a subfolder")
    (tmp_path / "b" / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / ".git" / "notes.txt").write_text("hidden")
    (tmp_path / ".draft.txt").write_text("hidden too")
    corpus = load_corpus(tmp_path)
    assert corpus.ids == ["a10.txt", "a2.md", "b/x.TXT"]
    assert corpus.texts == ["ten\nlines kept whole\n", "# two", "in a subfolder"]


def test_a_folder_without_text_files_or_with_a_blank_one_is_an_error(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(CorpusError, match="no .txt, .text, .md files"):
        load_corpus(tmp_path)
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(CorpusError, match="blank text.*empty.txt"):
        load_corpus(tmp_path)
    with pytest.raises(CorpusError, match="has no fields"):
        load_corpus(tmp_path, text_field="body")


def test_a_dataframe_is_read_as_a_files_records_with_its_index_as_default_ids():
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"ticket": [10, 11, 12], "body": [r["text"] for r in RECORDS], "score": [1.5, np.nan, 3.0]},
                         index=np.array([7, 8, 9]))
    with pytest.warns(UserWarning, match="clustering the column 'body'"):
        corpus = as_corpus(frame)
    check_records(corpus, with_ids=False)
    assert corpus.ids == [7, 8, 9] and all(type(i) is int for i in corpus.ids)
    assert corpus.extra == [{"ticket": 10, "score": 1.5}, {"ticket": 11, "score": None}, {"ticket": 12, "score": 3.0}]
    chosen = from_dataframe(frame, text_field="body", id_field="ticket")
    assert chosen.ids == [10, 11, 12] and chosen.extra[1] == {"score": None}


def test_a_dataframe_with_a_missing_text_or_no_text_column_says_what_to_fix():
    import pandas as pd

    with pytest.raises(CorpusError, match="1 blank text, id 'y'; remove it or fill it in."):
        as_corpus(pd.DataFrame({"text": ["a", None, "c"]}, index=["x", "y", "z"]))
    with pytest.raises(CorpusError, match="no text field found; pass text_field, one of 'x', 'y'"):
        as_corpus(pd.DataFrame({"x": ["a"], "y": ["b"]}))
    with pytest.raises(CorpusError, match="drop ids"):
        as_corpus(pd.DataFrame({"text": ["a"]}), ids=[1])


def test_a_series_gives_its_values_with_its_index_as_ids_and_one_string_is_refused():
    import pandas as pd

    corpus = as_corpus(pd.Series(["refund", "parcel"], index=[5, 7], name="msg"))
    assert corpus.texts == ["refund", "parcel"] and corpus.ids == [5, 7] and corpus.source == "<Series 'msg'>"
    assert as_corpus(pd.Series(["a", "b"]), ids=["p", "q"]).ids == ["p", "q"]
    with pytest.raises(CorpusError, match="1 blank text"):
        as_corpus(pd.Series(["a", float("nan")]))
    with pytest.raises(CorpusError, match="not one string"):
        as_corpus("where is my parcel")
    assert as_corpus(["a", "b"]).ids == [1, 2]


def test_a_dict_gives_its_values_with_its_keys_as_ids():
    corpus = as_corpus({"t1": "refund", "t2": "parcel"})
    assert corpus.texts == ["refund", "parcel"] and corpus.ids == ["t1", "t2"]
    with pytest.raises(CorpusError, match="drop ids"):
        as_corpus({"t1": "refund"}, ids=[1])


def test_load_corpus_takes_texts_in_memory_as_fit_does():
    import pandas as pd

    frame = pd.DataFrame({"body": ["refund", "parcel"], "ticket": ["t1", "t2"]})
    chosen = load_corpus(frame, text_field="body", id_field="ticket")
    assert chosen.texts == ["refund", "parcel"] and chosen.ids == ["t1", "t2"]
    with pytest.warns(UserWarning, match="clustering the column 'body'"):
        assert load_corpus(frame).ids == [0, 1]
    assert load_corpus(frame["body"]).texts == ["refund", "parcel"]
    assert load_corpus({"a": "refund"}).ids == ["a"] and load_corpus(["x", "y"]).ids == [1, 2]
    with pytest.raises(CorpusError, match="a list has none: drop them"):
        load_corpus(["x"], text_field="body")
    with pytest.raises(CorpusError, match="got int"):
        load_corpus(42)


@pytest.mark.parametrize("texts, ids, message", [
    (["a", None, "b"], None, "texts must be strings; the item at index 1 is None; drop it or make it a string."),
    (["a", float("nan"), 3], None, "the items at indexes 1, 2 are NaN or int; drop them or make them strings."),
    ({"t1": "a", "t2": None}, None, "the text with id 't2' is None; drop it or make it a string."),
    (["a", "b"], [1, 1], "duplicate ids: 1; every record needs a unique id."),  # no field to choose from a list
    (["a", "b"], [1], "1 id for 2 texts; give one id per text."),
])
def test_texts_from_python_that_cannot_be_read_are_named_with_what_to_do(texts, ids, message):
    with pytest.raises(CorpusError) as e:
        as_corpus(texts, ids)
    assert str(e.value).endswith(message), str(e.value)


def test_bundled_sample_is_valid():
    corpus = load_corpus(sample_corpus_path(), id_field="id")
    assert len(corpus) == 2000
    assert len({e["labels"]["domain"] for e in corpus.extra}) == 10


def test_warnings_about_a_corpus_point_at_the_line_that_read_it(tmp_path):
    """Not at the library's own line several calls below it, where a user cannot act on it."""
    import pandas as pd

    from clusteragent.tools.corpus import FieldChoiceWarning

    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes("text\nna\u00efve\n".encode("cp1252"))
    with pytest.warns(UnicodeWarning) as caught:
        load_corpus(legacy)
    with pytest.warns(FieldChoiceWarning) as chosen:
        as_corpus(pd.DataFrame({"sentence": ["one", "two"]}))
    assert [w.filename for w in (*caught, *chosen)] == [__file__, __file__]


def test_several_text_fields_are_joined_into_each_text(tmp_path):
    import pandas as pd

    rows = [{"id": 1, "title": "Cats at night", "abstract": "They sleep all day.", "year": 2020},
            {"id": 2, "title": "Dogs", "abstract": None, "year": 2021},
            {"id": 3, "title": " ", "year": 2022}]
    path = write_jsonl(tmp_path / "papers.jsonl", rows)
    with pytest.raises(CorpusError, match="1 blank text, id 3"):  # a field missing from a record is blank there
        load_corpus(path, text_field=["title", "abstract"])
    rows[2]["abstract"] = "No title here."
    corpus = load_corpus(write_jsonl(path, rows), text_field=["title", "abstract"])
    assert corpus.texts == ["Cats at night\n\nThey sleep all day.", "Dogs", "No title here."]
    assert corpus.text_field == ("title", "abstract") and corpus.extra[0] == {"year": 2020}
    frame = pd.DataFrame(rows).set_index("id")
    assert load_corpus(frame, text_field=["title", "abstract"]).texts == corpus.texts
    with pytest.raises(CorpusError, match="no text field 'summary'"):
        load_corpus(path, text_field=["title", "summary"])
    with pytest.raises(CorpusError, match="the record on line 2 has no field 'title' or 'body'"):
        load_corpus(write_jsonl(path, [{"title": "a", "body": "b"}, {"year": 1, "title2": "c"}]),
                    text_field=["title", "body"])
