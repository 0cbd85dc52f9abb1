"""The second line of defence on user SQL: ClickHouse's canonical statement and
its EXPLAIN AST (recorded from chDB 26.9 here), checked by check_tree. The
engine-level refusals are exercised against a real worker in
tests/integration/test_http_security.py."""

import re

import pytest

from fleetpulse.errors import QueryError
from fleetpulse.streams.worker.query import check_tree

SELECT = ["SelectWithUnionQuery (children 2)", " ExpressionList (children 1)", "  SelectQuery (children 1)",
          "   ExpressionList (children 1)", "    Literal UInt64_1", " Identifier Native"]


@pytest.mark.parametrize("statement, tree", [
    ("SELECT 1", SELECT),
    ("EXPLAIN PIPELINE header = 1 SELECT 1", ["Explain EXPLAIN PIPELINE (children 3)", " Set",
                                             " SelectWithUnionQuery (children 1)", "  ExpressionList (children 1)"]),
    ("SELECT 'file' AS profile", SELECT),
])
def test_reads_pass(statement, tree):
    check_tree(statement, tree)


@pytest.mark.parametrize("statement, tree, why", [
    ("KILL QUERY WHERE 1 ASYNC", ["KillQueryQuery Literal_UInt64_1 ASYNC (children 2)", " Literal UInt64_1"],
     "KILL QUERY ... is refused"),
    ("INSERT INTO t SELECT 1", ["InsertQuery   (children 2)"], "INSERT INTO ... is refused"),
    ("EXPLAIN PIPELINE header = 1 INSERT INTO FUNCTION file('x') SELECT 1",
     ["Explain EXPLAIN PIPELINE (children 3)", " Set", " InsertQuery   (children 2)", "  Function file (children 1)"],
     "EXPLAIN is allowed for SELECT only"),
    ("SELECT 1 INTO OUTFILE '/tmp/x'", SELECT[:-1] + [" Literal '/tmp/x'", " Identifier Native"], "INTO OUTFILE"),
    ("SELECT 1 FORMAT JSON", SELECT[:-1] + [" Identifier JSON"], "FORMAT is refused"),
    ("SELECT arrayMap(x -> file(x), ['/etc/passwd'])",
     ["SelectWithUnionQuery (children 2)", " ExpressionList (children 1)", "  SelectQuery (children 1)",
      "   ExpressionList (children 1)", "    Function arrayMap (children 1)", "     ExpressionList (children 2)",
      "      Function lambda (children 1)", "       ExpressionList (children 2)", "        Function tuple",
      "        Function file (children 1)"], "file() function is refused"),
    ("SHOW TABLES FROM system WHERE length(file('/etc/passwd')) > 0", ["ShowTables (children 1)",
                                                                        " Identifier Native"], "SHOW TABLES ... is refused"),
    ("DESCRIBE TABLE url('http://x/', 'CSV')", ["DescribeQuery (children 2)", " TableExpression (children 1)",
                                               "  Function url (children 1)"], "DESCRIBE TABLE ... is refused"),
    ("EXISTS TABLE t", ["ExistsTableQuery t (children 2)"], "EXISTS TABLE ... is refused"),
    ("SELECT * APPLY file FROM (SELECT '/etc/passwd' AS p)",  # the function is a name, not a node
     ["SelectWithUnionQuery (children 1)", " ExpressionList (children 1)", "  SelectQuery (children 2)",
      "   ExpressionList (children 1)", "    Asterisk (children 1)", "     ColumnsTransformerList (children 1)",
      "      ColumnsApplyTransformer"], "APPLY is refused"),
    ("SELECT x FROM t", SELECT[:-1] + ["  SomeFutureNode (children 1)"], "SomeFutureNode is not supported"),
    ("", [], "is refused"),
])
def test_everything_else_is_refused(statement, tree, why):
    with pytest.raises(QueryError, match=re.escape(why)):
        check_tree(statement, tree)


def test_the_read_only_session_sets_its_limits_before_readonly():
    from fleetpulse.settings import load_settings
    from fleetpulse.streams.worker.query import session_settings

    embedded = session_settings(load_settings(environ={}, query_timeout_seconds=7))
    assert list(embedded)[-1] == "readonly" and embedded["readonly"] == 1, "readonly last: it freezes the rest"
    assert embedded["max_execution_time"] == 7 and embedded["max_threads"] == 1
    server = session_settings(load_settings(environ={}, clickhouse_url="http://ch:8123"))
    assert server["readonly"] == 1 and "max_threads" not in server
    dedicated = load_settings(environ={}, clickhouse_url="http://ch:8123", clickhouse_query_user="fleetpulse_reader")
    assert session_settings(dedicated) == {}, "the user's settings profile holds them"
