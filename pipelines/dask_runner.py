"""Beam's DaskRunner with each bundle's outputs its own (`--runner DaskRunner`).

Beam's DaskRunner (2.77) runs a ParDo on each Dask partition with one output receiver
made when the graph is built: its list of outputs is shared by every partition that a
worker process runs, so each partition returns the outputs of the ones before it too.
Steps whose results do not depend on how often an element arrives (the shard writers,
which drop repeated records) came out right; counts came out too high (9 notes counted
as 27; README, "Running on Dataflow, Flink, Spark or Dask"). This runner is Beam's, with
every ParDo translated to a bundle that makes its own receiver.

Needs the `dask` extra: pip install 'reverbsynth[dask]'.
"""

import contextlib

import apache_beam as beam
from apache_beam.runners import common
from apache_beam.runners.dask import dask_runner, transform_evaluator


def _run_bundle(items, fn, window_fn, label: str, side_inputs, args, kwargs) -> list:
  """The DoFn `fn` over one partition's windowed `items`: its main outputs, as a list."""
  receivers = transform_evaluator.OneReceiver()  # This bundle's alone.
  handler = common._OutputHandler(
      window_fn=window_fn, main_receivers=receivers[None], tagged_receivers=receivers,
      per_element_output_counter=None, output_batch_converter=None,
      process_yields_batches=False, process_batch_yields_elements=False)
  invoker = common.DoFnInvoker.create_invoker(
      common.DoFnSignature(fn), handler, context=common.DoFnContext(label, state=None),
      side_inputs=side_inputs, input_args=args, input_kwargs=kwargs,
      user_state_context=None, bundle_finalizer_param=beam.DoFn.BundleFinalizerParam())
  invoker.invoke_setup()
  invoker.invoke_start_bundle()
  for item in items:
    invoker.invoke_process(item)
  invoker.invoke_finish_bundle()
  invoker.invoke_teardown()
  return [output.value for output in receivers.values]


class _ParDo(transform_evaluator.ParDo):
  """A ParDo as Dask partitions, each run by _run_bundle."""

  def apply(self, input_bag, side_inputs=None):
    args, kwargs = self.transform.raw_side_inputs
    main_input = next(iter(self.applied.main_inputs.values()))
    window_fn = getattr(getattr(main_input, "windowing", None), "windowfn", None)
    return input_bag.map(transform_evaluator.get_windowed_value, window_fn).map_partitions(
        _run_bundle, self.transform.fn, window_fn, self.transform.label, side_inputs,
        list(args), kwargs)


@contextlib.contextmanager
def _translating_pardo_as(op):
  translations = transform_evaluator.TRANSLATIONS
  saved = translations[beam.ParDo]
  translations[beam.ParDo] = op
  try:
    yield
  finally:
    translations[beam.ParDo] = saved


class DaskRunner(dask_runner.DaskRunner):
  """Runs a pipeline on a Dask cluster (`--dask_client_address`, else a local one)."""

  def run_pipeline(self, pipeline, options):
    # The graph is translated here, before the run starts.
    with _translating_pardo_as(_ParDo):
      return super().run_pipeline(pipeline, options)
