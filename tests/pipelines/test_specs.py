from pipelines.components import specs


def test_every_input_names_an_earlier_output_of_its_type():
    seen = {}
    for spec in specs.PIPELINE:
        for name, source in spec.inputs.items():
            assert (source.producer, source.output) in seen, (spec.name, name)
            assert seen[(source.producer, source.output)] == source.type, (spec.name, name)
        seen.update({(spec.name, out): kind for out, kind in spec.outputs.items()})


def test_executors_are_functions_named_in_the_code_version():
    for spec in specs.PIPELINE:
        assert callable(spec.executor) and spec.executor.__name__ == "execute"
        assert spec.executor_name == f"{spec.executor.__module__}:execute"
        assert spec.executor.__module__.startswith("pipelines.components.")
        assert len(spec.code_version()) == 16
