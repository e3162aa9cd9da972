"""set_values, return_response and terminate: config validation and run."""
from workflows.actions import registry


def test_set_values_outputs_its_values(make_context):
    action = registry.get("set_values")
    assert set(action.validate_definition({})) == {"values"}
    assert action.run(config={"values": {"a": 1, "b": [2]}}, context=make_context()) == {"a": 1, "b": [2]}


def test_return_response_sets_what_a_sync_caller_gets(make_context):
    action = registry.get("return_response")
    assert "status" in action.validate_definition({"status": 99})
    config = action.validate_runtime({"status": 201, "body": {"ok": True}, "headers": {"X-A": "1"}})
    context = make_context()
    output = action.run(config=config, context=context)
    assert context.response == output == {
        "status": 201, "headers": {"X-A": "1"}, "content_type": "application/json", "body": {"ok": True}
    }


def test_terminate_marks_the_context(make_context):
    action = registry.get("terminate")
    context = make_context()
    action.run(config={}, context=context)
    assert context.terminated
