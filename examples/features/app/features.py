"""Real-time features and samples for a recommender (pyudf's examples/features).

Written as a PyFlink user writes the seed article's two jobs; the Go program
(app/pipeline.go) plays the part of PyFlink's job graph: it keys the stream,
owns the watermark, drives the sliding windows and joins the samples.

* ``visited_items``: the visit-sequence feature, a Pandas UDAF. Per user,
  over a 5-minute event-time window sliding every 30 seconds, the items the
  user clicked, sorted, distinct, joined with ``|``.
* ``SampleLabeller``: a KeyedProcessFunction keyed by ``trace_id``. Each
  exposure waits 10 minutes of event time for a click with the same
  trace_id; its timer then emits the sample, labelled 1 (clicked in time) or
  0. Events behind the watermark go to the ``late-events`` side output; a
  late click still labels its exposure while that exposure's timer is
  pending.
"""

import pandas as pd

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor
from pyflink.table import DataTypes
from pyflink.table.udf import udaf

TEN_MINUTES = 10 * 60 * 1000

late_events = OutputTag(
    "late-events",
    Types.ROW_NAMED(["type", "trace_id", "user_id", "item_id", "event_time"],
                    [Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.LONG()]))


@udaf(input_types=[DataTypes.STRING()], result_type=DataTypes.STRING(), func_type="pandas")
def visited_items(item_id: pd.Series) -> str:
    """The items of one user's window: sorted, distinct, '|'-joined."""
    return "|".join(sorted(item_id.unique()))


class SampleLabeller(KeyedProcessFunction):
    """Labels each exposure, keyed by trace_id.

    An event is a row (or dict) with type, trace_id, user_id, item_id and
    event_time; ctx.timestamp() is its event time.
    """

    def open(self, runtime_context: RuntimeContext):
        self.exposure = runtime_context.get_state(ValueStateDescriptor(
            "exposure", Types.TUPLE([Types.STRING(), Types.STRING(), Types.LONG()])))
        self.clicks = runtime_context.get_list_state(ListStateDescriptor("clicks", Types.LONG()))
        self.positives = runtime_context.get_metrics_group().counter("positive_samples")
        self.negatives = runtime_context.get_metrics_group().counter("negative_samples")

    def process_element(self, event, ctx: 'KeyedProcessFunction.Context'):
        ts = ctx.timestamp()
        timers = ctx.timer_service()
        if ts <= timers.current_watermark():
            # Behind the watermark: its windows have fired, so it goes to the
            # side output (the Go job keeps it out of the windows). A late
            # click still labels its exposure if that exposure's timer has
            # not fired yet (the state is there until it does): a
            # KeyedProcessFunction sees late elements, and the click did
            # come within the 10 minutes. A late exposure starts nothing.
            if event["type"] == "click" and self.exposure.value() is not None:
                self.clicks.add(ts)
            yield late_events, Row(type=event["type"], trace_id=ctx.get_current_key(),
                                   user_id=event["user_id"], item_id=event["item_id"], event_time=ts)
            return
        if event["type"] == "exposure":
            if self.exposure.value() is not None:
                return  # the same trace_id exposed twice: the first exposure counts
            self.exposure.update((event["user_id"], event["item_id"], ts))
            timers.register_event_time_timer(ts + TEN_MINUTES)
        else:  # click
            if self.exposure.value() is None and not list(self.clicks.get()):
                # A click before (or without) its exposure: forget it after
                # 10 minutes unless the exposure comes.
                timers.register_event_time_timer(ts + TEN_MINUTES)
            self.clicks.add(ts)

    def on_timer(self, timestamp: int, ctx: 'KeyedProcessFunction.OnTimerContext'):
        exposure = self.exposure.value()
        if exposure is None:  # the clean-up timer of clicks without an exposure
            self.clicks.clear()
            return
        user_id, item_id, shown = exposure
        if timestamp != shown + TEN_MINUTES:
            return  # an orphan click's clean-up timer; the exposure's own timer decides
        in_time = [c for c in self.clicks.get() if shown <= c <= shown + TEN_MINUTES]
        self.exposure.clear()
        self.clicks.clear()
        if in_time:
            self.positives.inc()
            yield Row(ctx.get_current_key(), user_id, item_id, shown, 1, min(in_time))
        else:
            self.negatives.inc()
            yield Row(ctx.get_current_key(), user_id, item_id, shown, 0, None)
