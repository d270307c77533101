"""Storm's "reach": how many distinct people saw a URL on Twitter, as a DRPC function.

reach(url) = the number of distinct followers of everyone who tweeted the URL.
The work fans out (tweeters, then their followers), is de-duplicated in
parallel, and is counted, all per request, in parallel with other requests::

    $ squall run examples/drpc_reach.py
    $ curl http://127.0.0.1:3774/drpc/reach/foo.com/blog/1
    16

The chain, built with ``LinearDRPCTopologyBuilder`` (Storm's ReachTopology):

* ``GetTweeters`` (4 tasks): ``[id, url]`` -> ``[id, tweeter]`` per tweeter;
* ``GetFollowers`` (12 tasks, shuffle): -> ``[id, follower]`` per follower;
* ``PartialUniquer`` (6 tasks, grouped by ``id`` and ``follower``): a batch bolt
  that collects the distinct followers it saw for the request, and emits
  ``[id, how many]`` once coordination says the request's tuples are all in;
* ``CountAggregator`` (3 tasks, grouped by ``id``): sums the partial counts.

The "databases" are in-memory tables, as in Storm's example.
"""

from __future__ import annotations

from squall import Bolt
from squall.drpc import BatchBolt, LinearDRPCTopologyBuilder

TWEETERS_DB = {
    "foo.com/blog/1": ["sally", "bob", "tim", "george", "nathan"],
    "engineering.twitter.com/blog/5": ["adam", "david", "sally", "nathan"],
    "tech.backtype.com/blog/123": ["tim", "mike", "john"],
}

FOLLOWERS_DB = {
    "sally": ["bob", "tim", "alice", "adam", "jim", "chris", "jai"],
    "bob": ["sally", "nathan", "jim", "mary", "david", "vivian"],
    "tim": ["alex"],
    "nathan": ["sally", "bob", "adam", "harry", "chris", "vivian", "emily", "jordan"],
    "adam": ["david", "carissa"],
    "mike": ["john", "bob"],
    "john": ["alice", "nathan", "jim", "mike", "bob"],
}


class GetTweeters(Bolt):
    outputs = ["id", "tweeter"]

    def process(self, tup):
        request_id, url = tup.values
        for tweeter in TWEETERS_DB.get(url, ()):
            self.emit([request_id, tweeter])


class GetFollowers(Bolt):
    outputs = ["id", "follower"]

    def process(self, tup):
        request_id, tweeter = tup.values
        for follower in FOLLOWERS_DB.get(tweeter, ()):
            self.emit([request_id, follower])


class PartialUniquer(BatchBolt):
    """One instance per request: the distinct followers this task saw."""

    outputs = ["id", "partial-count"]

    def initialize(self, conf, context):
        self.followers = set()

    def process(self, tup):
        self.followers.add(tup.values.follower)

    def finish_batch(self):
        self.emit([self.batch_id, len(self.followers)])


class CountAggregator(BatchBolt):
    outputs = ["id", "reach"]

    def initialize(self, conf, context):
        self.count = 0

    def process(self, tup):
        self.count += tup.values[1]

    def finish_batch(self):
        self.emit([self.batch_id, self.count])


def reach_builder():
    builder = LinearDRPCTopologyBuilder("reach")
    builder.add_bolt(GetTweeters, 4, name="tweeters")
    builder.add_bolt(GetFollowers, 12, name="followers").shuffle_grouping()
    builder.add_bolt(PartialUniquer, 6, name="uniquer").fields_grouping(["id", "follower"])
    builder.add_bolt(CountAggregator, 3, name="count").fields_grouping(["id"])
    return builder


# What ``squall run`` serves (requests come from its DRPC server, over HTTP).
reach = reach_builder().create_topology("reach")
