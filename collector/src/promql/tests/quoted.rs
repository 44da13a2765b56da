//! Cases quoted verbatim from Prometheus's `promql/promqltest/testdata/*.test` (float-sample
//! cases only: native-histogram lines and annotation expectations are left out).

use super::run_script;

#[test]
fn staleness_test() {
    run_script(
        r#"
load 10s
  metric 0 1 stale 2

# Instant vector doesn't return series when stale.
eval instant at 10s metric
  {__name__="metric"} 1

eval instant at 20s metric

eval instant at 30s metric
  {__name__="metric"} 2

eval instant at 40s metric
  {__name__="metric"} 2

# It goes stale 5 minutes after the last sample.
# (Left out: `eval instant at 330s metric` expecting the sample at 30 s; see
# `lookback_window_is_open_at_the_old_end` for why.)
eval instant at 331s metric


# Range vector ignores stale sample.
eval instant at 30s count_over_time(metric[1m])
  {} 3

eval instant at 10s count_over_time(metric[1s])
  {} 1

eval instant at 20s count_over_time(metric[1s])

eval instant at 20s count_over_time(metric[10s])

eval instant at 20s count_over_time(metric[20s])
  {} 1


clear

load 10s
  metric 0

# Series with single point goes stale after 5 minutes.
eval instant at 0s metric
  {__name__="metric"} 0

eval instant at 150s metric
  {__name__="metric"} 0

eval instant at 301s metric
"#,
    );
}

#[test]
fn functions_test_resets_and_changes() {
    run_script(
        r#"
load 5m
	http_requests{path="/foo"}	1 2 3 0 1 0 0 1 2 0
	http_requests{path="/bar"}	1 2 3 4 5 1 2 3 4 5
	http_requests{path="/biz"}  0 0 0 0 0 1 1 1 1 1

eval instant at 50m resets(http_requests[5m])

eval instant at 50m resets(http_requests[10m])
	{path="/foo"} 0
	{path="/bar"} 0
	{path="/biz"} 0

eval instant at 50m resets(http_requests[20m])
	{path="/foo"} 1
	{path="/bar"} 0
	{path="/biz"} 0

eval instant at 50m resets(http_requests[32m])
	{path="/foo"} 2
	{path="/bar"} 1
	{path="/biz"} 0

eval instant at 50m resets(http_requests[50m])
	{path="/foo"} 3
	{path="/bar"} 1
	{path="/biz"} 0

eval instant at 50m resets(nonexistent_metric[50m])

eval instant at 50m changes(http_requests[5m])

eval instant at 50m changes(http_requests[6m])
	{path="/foo"} 0
	{path="/bar"} 0
	{path="/biz"} 0

eval instant at 50m changes(http_requests[20m])
	{path="/foo"} 2
	{path="/bar"} 2
	{path="/biz"} 0

eval instant at 50m changes(http_requests[50m])
	{path="/foo"} 7
	{path="/bar"} 8
	{path="/biz"} 1

eval instant at 50m changes((http_requests[50m]))
	{path="/foo"} 7
	{path="/bar"} 8
	{path="/biz"} 1

clear

load 5m
  x{a="b"} NaN NaN NaN
  x{a="c"} 0 NaN 0

eval instant at 15m changes(x[20m])
  {a="b"} 0
  {a="c"} 2
"#,
    );
}

#[test]
fn functions_test_increase_rate_irate_delta_idelta() {
    run_script(
        r#"
load 5m
	http_requests_total{path="/foo"}	0+10x10
	http_requests_total{path="/bar"}	0+18x5 0+18x5
	http_requests_total{path="/dings"}   10+10x10
	http_requests_total{path="/bumms"}    1+10x10

eval instant at 50m increase(http_requests_total[50m])
	{path="/foo"}   100
	{path="/bar"}   160
	{path="/dings"} 100
	{path="/bumms"} 100

eval instant at 50m increase(http_requests_total[100m])
	{path="/foo"}   100
	{path="/bar"}   162
	{path="/dings"} 105
	{path="/bumms"} 101

clear

load 5m
	http_requests_total{path="/foo"}	0 1 2 3 2 3 4

eval instant at 30m increase(http_requests_total[30m])
    {path="/foo"} 7

clear

load 5m
	testcounter_reset_middle_total	0+27x4 0+27x5
	testcounter_reset_end_total  	0+10x9 0 10

eval instant at 50m rate(testcounter_reset_middle_total[50m])
	{} 0.08

eval instant at 50m rate(testcounter_reset_end_total[5m])

eval instant at 50m rate(testcounter_reset_end_total[6m])
	{} 0

clear

load 5m
	calculate_rate_offset_total{x="a"}	0+10x10
	calculate_rate_offset_total{x="b"}	0+20x10
	calculate_rate_window_total		0+80x10

eval instant at 50m rate(calculate_rate_window_total[50m])
	{} 0.26666666666666666

eval instant at 50m rate(calculate_rate_offset_total[10m] offset 5m)
	{x="a"} 0.03333333333333333
	{x="b"} 0.06666666666666667

clear

load 4m
	testcounter_zero_cutoff_total{start="0m"}	0+240x10
	testcounter_zero_cutoff_total{start="1m"}	60+240x10
	testcounter_zero_cutoff_total{start="2m"}	120+240x10
	testcounter_zero_cutoff_total{start="3m"}	180+240x10
	testcounter_zero_cutoff_total{start="4m"}	240+240x10
	testcounter_zero_cutoff_total{start="5m"}	300+240x10

eval instant at 10m rate(testcounter_zero_cutoff_total[20m])
	{start="0m"} 0.5
	{start="1m"} 0.55
	{start="2m"} 0.6
	{start="3m"} 0.6
	{start="4m"} 0.6
	{start="5m"} 0.6

eval instant at 50m rate(testcounter_zero_cutoff_total[20m])
	{start="0m"} 0.6
	{start="1m"} 0.6
	{start="2m"} 0.6
	{start="3m"} 0.6
	{start="4m"} 0.6
	{start="5m"} 0.6

clear

load 5m
	http_requests_total{path="/foo"}	0+10x10
	http_requests_total{path="/bar"}	0+10x5 0+10x5
	http_requests_nan{}               1 NaN NaN 5 11

eval instant at 50m irate(http_requests_total[50m])
	{path="/foo"} .03333333333333333333
	{path="/bar"} .03333333333333333333

eval instant at 30m irate(http_requests_total[50m])
	{path="/foo"} .03333333333333333333
	{path="/bar"} 0

eval range from 0 to 20m step 5m irate(http_requests_nan[15m1s])
	{} _ NaN NaN NaN 0.02

clear

load 5m
	http_requests{path="/foo"}	0 50 100 150 200
	http_requests{path="/bar"}	200 150 100 50 0

eval instant at 20m delta(http_requests[20m])
	{path="/foo"} 200
	{path="/bar"} -200

clear

load 5m
	http_requests{path="/foo"}	0 50 100 150
	http_requests{path="/bar"}	0 50 100 50
	http_requests_nan{}         1 NaN NaN 5 11

eval instant at 20m idelta(http_requests[20m])
	{path="/foo"} 50
	{path="/bar"} -50

eval range from 0 to 20m step 5m idelta(http_requests_nan[15m1s])
	{} _ NaN NaN NaN 6
"#,
    );
}

#[test]
fn functions_test_deriv_and_predict_linear() {
    run_script(
        r#"
load 5m
	testcounter_reset_middle_total	0+10x4 0+10x5
	http_requests_total{job="app-server", instance="1", group="canary"}		0+80x10
	http_requests_inf{job="app-server", instance="1", group="canary"}	-Inf 0+80x10 Inf

eval instant at 50m rate(http_requests_total{group="canary", instance="1", job="app-server"}[50m])
	{group="canary", instance="1", job="app-server"} 0.26666666666666666

eval instant at 50m deriv(http_requests_total{group="canary", instance="1", job="app-server"}[50m])
	{group="canary", instance="1", job="app-server"} 0.26666666666666666

eval instant at 50m deriv(testcounter_reset_middle_total[100m])
	{} 0.010606060606060607

eval instant at 100m deriv(http_requests_inf[100m])
	{job="app-server", instance="1", group="canary"} NaN

eval instant at 50m predict_linear(testcounter_reset_middle_total[50m], 3600)
	{} 70

eval instant at 50m predict_linear(testcounter_reset_middle_total[50m], 1h)
	{} 70

eval instant at 50m predict_linear(testcounter_reset_middle_total[55m] @ 3000, 3600)
	{} 76.81818181818181

eval instant at 10m predict_linear(testcounter_reset_middle_total[55m] @ 3000, 3600)
	{} 51.36363636363637

eval instant at 70m predict_linear(testcounter_reset_middle_total[55m] @ 3000, 3600)
	{} 89.54545454545455

eval instant at 100m predict_linear(http_requests_inf[100m], 6000)
	{job="app-server", instance="1", group="canary"} NaN

eval instant at 50m predict_linear(http_requests_total[50m], 3600) - (http_requests_total + deriv(http_requests_total[50m]) * 3600)
	{group="canary", instance="1", job="app-server"} 0
"#,
    );
}

#[test]
fn functions_test_vector_time_clamp_sgn() {
    run_script(
        r#"
load 10s
  metric 1 1

eval instant at 0s timestamp(metric)
  {} 0

eval instant at 5s timestamp(metric)
  {} 0

eval instant at 5s timestamp(((metric)))
  {} 0

eval instant at 10s timestamp(metric)
  {} 10

eval instant at 10s timestamp(((metric)))
  {} 10

clear

eval instant at 0m vector(1)
  {} 1

eval instant at 0s vector(time())
  {} 0

eval instant at 5s vector(time())
  {} 5

eval instant at 60m vector(time())
  {} 3600

load 5m
	test_clamp{src="clamp-a"}	-50
	test_clamp{src="clamp-b"}	0
	test_clamp{src="clamp-c"}	100

eval instant at 0m clamp_max(test_clamp, 75)
	{src="clamp-a"}	-50
	{src="clamp-b"}	0
	{src="clamp-c"}	75

eval instant at 0m clamp_min(test_clamp, -25)
	{src="clamp-a"}	-25
	{src="clamp-b"}	0
	{src="clamp-c"}	100

eval instant at 0m clamp(test_clamp, -25, 75)
	{src="clamp-a"}	-25
	{src="clamp-b"}	0
	{src="clamp-c"}	75

eval instant at 0m clamp_max(clamp_min(test_clamp, -20), 70)
	{src="clamp-a"}	-20
	{src="clamp-b"}	0
	{src="clamp-c"}	70

eval instant at 0m clamp_max((clamp_min(test_clamp, (-20))), (70))
	{src="clamp-a"}	-20
	{src="clamp-b"}	0
	{src="clamp-c"}	70

eval instant at 0m clamp(test_clamp, 0, NaN)
	{src="clamp-a"}	NaN
	{src="clamp-b"}	NaN
	{src="clamp-c"}	NaN

eval instant at 0m clamp(test_clamp, NaN, 0)
	{src="clamp-a"}	NaN
	{src="clamp-b"}	NaN
	{src="clamp-c"}	NaN

eval instant at 0m clamp(test_clamp, 5, -5)

clear
load 5m
	test_sgn{src="sgn-a"}	-Inf
	test_sgn{src="sgn-b"}	Inf
	test_sgn{src="sgn-c"}	NaN
	test_sgn{src="sgn-d"}	-50
	test_sgn{src="sgn-e"}	0
	test_sgn{src="sgn-f"}	100

eval instant at 0m sgn(test_sgn)
	{src="sgn-a"}	-1
	{src="sgn-b"}	1
	{src="sgn-c"}	NaN
	{src="sgn-d"}	-1
	{src="sgn-e"}	0
	{src="sgn-f"}	1

clear

eval instant at 1ms time()
  0.001

eval instant at 50m time()
  3000

clear

load 5m
  testmetric1{src="a",dst="b"} 0
  testmetric2{src="a",dst="b"} 1

eval instant at 0m changes({__name__=~'testmetric1|testmetric2'}[5m])
	expect fail
"#,
    );
}

#[test]
fn functions_test_over_time() {
    run_script(
        r#"
load 10s
	metric 0 8 8 2 3

eval instant at 1m stdvar_over_time(metric[2m])
	{} 10.56

eval instant at 1m stddev_over_time(metric[2m])
	{} 3.249615

clear

load 10s
	data{test="two samples"} 0 1
	data{test="three samples"} 0 1 2
	data{test="uneven samples"} 0 1 4

eval instant at 1m quantile_over_time(0.5, data[2m])
	{test="two samples"} 0.5
	{test="three samples"} 1
	{test="uneven samples"} 1

eval instant at 1m quantile_over_time(0.8, data[2m])
	{test="two samples"} 0.8
	{test="three samples"} 1.6
	{test="uneven samples"} 2.8

eval instant at 1m quantile_over_time(-1, data[2m])
	{test="two samples"} -Inf
	{test="three samples"} -Inf
	{test="uneven samples"} -Inf

clear

load 10s
  foo 52+0x100

eval instant at 10m avg_over_time(foo[100s]) == 52
  {} 52

eval instant at 10m avg_over_time(foo[130s]) == 52
  {} 52

clear
load 1ms
  metric 1+0x4000

eval instant at 4s sum_over_time(metric[1000ms])
  {} 1000

eval instant at 4s sum_over_time(metric[1001ms])
  {} 1001

eval instant at 4s sum_over_time(metric[3003ms])
  {} 3003

clear

load 10s
	data{type="numbers"} 2 0 3
	data{type="some_nan"} 2 0 NaN
	data{type="some_nan2"} 2 NaN 1
	data{type="some_nan3"} NaN 0 1
	data{type="only_nan"} NaN NaN NaN
	data_sparse{type="sparse_numbers"} _ 5 2 _ 4 _
	data_empty{type="empty_series"} _ _ _ _ _ _ _ _ _ _ _ _ _

eval instant at 1m min_over_time(data[2m])
	{type="numbers"} 0
	{type="some_nan"} 0
	{type="some_nan2"} 1
	{type="some_nan3"} 0
	{type="only_nan"} NaN

eval instant at 1m min_over_time(data_sparse[2m])
	{type="sparse_numbers"} 2

eval instant at 1m max_over_time(data[2m])
	{type="numbers"} 3
	{type="some_nan"} 2
	{type="some_nan2"} 2
	{type="some_nan3"} 1
	{type="only_nan"} NaN

eval instant at 1m last_over_time({__name__=~"data(_histogram|_sparse|_empty)?"}[2m])
	data{type="numbers"} 3
	data{type="some_nan"} NaN
	data{type="some_nan2"} 1
	data{type="some_nan3"} 1
	data{type="only_nan"} NaN
	data_sparse{type="sparse_numbers"} 4

eval instant at 1m count_over_time({__name__=~"data(_histogram|_sparse|_empty)?"}[2m])
	{type="numbers"} 3
	{type="some_nan"} 3
	{type="some_nan2"} 3
	{type="some_nan3"} 3
	{type="only_nan"} 3
	{type="sparse_numbers"} 3

clear

load 5m
	data{type="positive"} 2.5
	data{type="whole"} 2
	data{type="negative"} -2.5
	data{type="nwhole"} -2
	data{type="zero"} 0
	data{type="nzero"} -0
	data{type="inf"} +Inf
	data{type="ninf"} -Inf
	data{type="nan"} NaN

eval instant at 0m abs(data)
	{type="positive"} 2.5
	{type="whole"} 2
	{type="negative"} 2.5
	{type="nwhole"} 2
	{type="zero"} 0
	{type="nzero"} 0
	{type="inf"} +Inf
	{type="ninf"} +Inf
	{type="nan"} NaN

eval instant at 0m floor(data)
	{type="positive"} 2
	{type="whole"} 2
	{type="negative"} -3
	{type="nwhole"} -2
	{type="zero"} 0
	{type="nzero"} 0
	{type="inf"} +Inf
	{type="ninf"} -Inf
	{type="nan"} NaN

eval instant at 0m round(data)
	{type="positive"} 3
	{type="whole"} 2
	{type="negative"} -2
	{type="nwhole"} -2
	{type="zero"} 0
	{type="nzero"} 0
	{type="inf"} +Inf
	{type="ninf"} -Inf
	{type="nan"} NaN

clear

eval instant at 50m absent(nonexistent)
	{} 1

eval instant at 50m absent(nonexistent{job="testjob", instance="testinstance", method=~".x"})
	{instance="testinstance", job="testjob"} 1

eval instant at 50m absent(nonexistent{job="testjob",job="testjob2",foo="bar"})
	{foo="bar"} 1

eval instant at 50m absent(nonexistent{job="testjob",job=~"testjob2",foo="bar"})
	{foo="bar"} 1

load 5m
	http_requests{job="api-server", instance="0", group="production"}	0+10x10

eval instant at 50m absent(http_requests)

eval instant at 50m absent(sum(http_requests))

eval instant at 50m absent(nonexistent > 1)
	{} 1

eval instant at 50m absent(rate(nonexistent[5m]))
	{} 1
"#,
    );
}

#[test]
fn aggregators_test() {
    run_script(
        r#"
load 5m
  http_requests{job="api-server", instance="0", group="production"} 0+10x10
  http_requests{job="api-server", instance="1", group="production"} 0+20x10
  http_requests{job="api-server", instance="0", group="canary"}   0+30x10
  http_requests{job="api-server", instance="1", group="canary"}   0+40x10
  http_requests{job="app-server", instance="0", group="production"} 0+50x10
  http_requests{job="app-server", instance="1", group="production"} 0+60x10
  http_requests{job="app-server", instance="0", group="canary"}   0+70x10
  http_requests{job="app-server", instance="1", group="canary"}   0+80x10

load 5m
  foo{job="api-server", instance="0", region="europe"} 0+90x10
  foo{job="api-server"} 0+100x10

eval instant at 50m SUM BY (group) (http_requests{job="api-server"})
  {group="canary"} 700
  {group="production"} 300

eval instant at 50m avg by (group) (http_requests{job="api-server"})
  {group="canary"} 350
  {group="production"} 150

eval instant at 50m count by (group) (http_requests{job="api-server"})
  {group="canary"} 2
  {group="production"} 2

eval instant at 50m sum without (instance) (http_requests{job="api-server"})
  {group="canary",job="api-server"} 700
  {group="production",job="api-server"} 300

eval instant at 50m sum by () (http_requests{job="api-server"})
  {} 1000

eval instant at 50m sum(http_requests{job="api-server"})
  {} 1000

eval instant at 50m sum without () (http_requests{job="api-server",group="production"})
  {group="production",job="api-server",instance="0"} 100
  {group="production",job="api-server",instance="1"} 200

eval instant at 50m sum without (instance) (http_requests{job="api-server"} or foo)
  {group="canary",job="api-server"} 700
  {group="production",job="api-server"} 300
  {region="europe",job="api-server"} 900
  {job="api-server"} 1000

eval instant at 50m sum(http_requests) by (job) + min(http_requests) by (job) + max(http_requests) by (job) + avg(http_requests) by (job)
  {job="app-server"} 4550
  {job="api-server"} 1750

eval instant at 50m sum(sum by (group) (http_requests{job="api-server"})) by (job)
  {} 1000

eval instant at 50m SUM(http_requests) BY (job, nonexistent)
	{job="api-server"} 1000
	{job="app-server"} 2600

eval instant at 50m MIN(http_requests) BY (job)
	{job="api-server"} 100
	{job="app-server"} 500

eval instant at 50m MAX(http_requests) BY (job)
	{job="api-server"} 400
	{job="app-server"} 800

eval instant at 50m abs(-1 * http_requests{group="production",job="api-server"})
	{group="production", instance="0", job="api-server"} 100
	{group="production", instance="1", job="api-server"} 200

eval instant at 50m round(-1 * (0.005 * http_requests{group="production",job="api-server"}))
	{group="production", instance="0", job="api-server"} 0
	{group="production", instance="1", job="api-server"} -1

eval instant at 50m round(-1 * (5.2 + 0.0005 * http_requests{group="production",job="api-server"}), 0.1)
	{group="production", instance="0", job="api-server"} -5.2
	{group="production", instance="1", job="api-server"} -5.3

eval instant at 50m round(0.045 * http_requests{group="production",job="api-server"}, 5)
	{group="production", instance="0", job="api-server"} 5
	{group="production", instance="1", job="api-server"} 10

eval instant at 50m stddev(http_requests)
  {} 229.12878474779

eval instant at 50m stdvar by (instance)(http_requests)
  {instance="0"} 50000
  {instance="1"} 50000

clear
load 5m
  http_requests{job="api-server", instance="0", group="production"}	1
  http_requests{job="api-server", instance="1", group="production"}	2
  http_requests{job="api-server", instance="0", group="canary"}		NaN
  http_requests{job="api-server", instance="1", group="canary"}		3
  http_requests{job="api-server", instance="2", group="canary"}		4

eval instant at 0m max(http_requests)
  {} 4

eval instant at 0m min(http_requests)
  {} 1

eval instant at 0m max by (group) (http_requests)
  {group="production"} 2
  {group="canary"} 4

clear

load 5m
	http_requests{job="api-server", instance="0", group="production"}	0+10x10
	http_requests{job="api-server", instance="1", group="production"}	0+20x10
	http_requests{job="api-server", instance="2", group="production"}	NaN NaN NaN NaN NaN NaN NaN NaN NaN NaN
	http_requests{job="api-server", instance="0", group="canary"}		0+30x10
	http_requests{job="api-server", instance="1", group="canary"}		0+40x10
	http_requests{job="app-server", instance="0", group="production"}	0+50x10
	http_requests{job="app-server", instance="1", group="production"}	0+60x10
	http_requests{job="app-server", instance="0", group="canary"}		0+70x10
	http_requests{job="app-server", instance="1", group="canary"}		0+80x10
	foo 3+0x10

eval_ordered instant at 50m topk(3, http_requests)
	http_requests{group="canary", instance="1", job="app-server"} 800
	http_requests{group="canary", instance="0", job="app-server"} 700
	http_requests{group="production", instance="1", job="app-server"} 600

eval_ordered instant at 50m topk((3), (http_requests))
	http_requests{group="canary", instance="1", job="app-server"} 800
	http_requests{group="canary", instance="0", job="app-server"} 700
	http_requests{group="production", instance="1", job="app-server"} 600

eval_ordered instant at 50m topk(5, http_requests{group="canary",job="app-server"})
	http_requests{group="canary", instance="1", job="app-server"} 800
	http_requests{group="canary", instance="0", job="app-server"} 700

eval_ordered instant at 50m bottomk(3, http_requests)
	http_requests{group="production", instance="0", job="api-server"} 100
	http_requests{group="production", instance="1", job="api-server"} 200
	http_requests{group="canary", instance="0", job="api-server"} 300

eval instant at 50m topk by (group) (1, http_requests)
  http_requests{group="production", instance="1", job="app-server"} 600
  http_requests{group="canary", instance="1", job="app-server"} 800

eval instant at 50m bottomk by (group) (2, http_requests)
  http_requests{group="canary", instance="0", job="api-server"} 300
  http_requests{group="canary", instance="1", job="api-server"} 400
  http_requests{group="production", instance="0", job="api-server"} 100
  http_requests{group="production", instance="1", job="api-server"} 200

eval_ordered instant at 50m bottomk(9999999999, http_requests{job="app-server",group="canary"})
	http_requests{group="canary", instance="0", job="app-server"} 700
	http_requests{group="canary", instance="1", job="app-server"} 800

eval_ordered instant at 50m topk(scalar(foo), http_requests)
	http_requests{group="canary", instance="1", job="app-server"} 800
	http_requests{group="canary", instance="0", job="app-server"} 700
	http_requests{group="production", instance="1", job="app-server"} 600

clear

load 10s
	data{test="two samples",point="a"} 0
	data{test="two samples",point="b"} 1
	data{test="three samples",point="a"} 0
	data{test="three samples",point="b"} 1
	data{test="three samples",point="c"} 2
	data{test="uneven samples",point="a"} 0
	data{test="uneven samples",point="b"} 1
	data{test="uneven samples",point="c"} 4
	foo .8

eval instant at 1m quantile without(point)(0.8, data)
	{test="two samples"} 0.8
	{test="three samples"} 1.6
	{test="uneven samples"} 2.8

eval instant at 1m quantile without(point)(scalar(foo), data)
	{test="two samples"} 0.8
	{test="three samples"} 1.6
	{test="uneven samples"} 2.8
"#,
    );
}

#[test]
fn histograms_test_classic_histogram_quantile() {
    run_script(
        r#"
load_with_nhcb 5m
	testhistogram_bucket{le="0.1", start="positive"}	0+5x10
	testhistogram_bucket{le=".2", start="positive"}		0+7x10
	testhistogram_bucket{le="1e0", start="positive"}	0+11x10
	testhistogram_bucket{le="+Inf", start="positive"}	0+12x10
	testhistogram_bucket{le="-.2", start="negative"}	0+1x10
	testhistogram_bucket{le="-0.1", start="negative"}	0+2x10
	testhistogram_bucket{le="0.3", start="negative"}	0+2x10
	testhistogram_bucket{le="+Inf", start="negative"}	0+3x10

load_with_nhcb 5m
	testhistogram2_bucket{le="0"}	 0+0x10
	testhistogram2_bucket{le="2"}	 0+1x10
	testhistogram2_bucket{le="4"}    0+2x10
	testhistogram2_bucket{le="6"}	 0+3x10
	testhistogram2_bucket{le="+Inf"} 0+3x10

load_with_nhcb 5m
	testhistogram3_bucket{le="0", start="positive"}	0+0x10
	testhistogram3_bucket{le="0.1", start="positive"}	0+5x10
	testhistogram3_bucket{le=".2", start="positive"}		0+7x10
	testhistogram3_bucket{le="1e0", start="positive"}	0+11x10
	testhistogram3_bucket{le="+Inf", start="positive"}	0+11x10
	testhistogram3_sum{start="positive"}	0+33x10
	testhistogram3_count{start="positive"}	0+11x10
	testhistogram3_bucket{le="-.25", start="negative"}	0+0x10
	testhistogram3_bucket{le="-.2", start="negative"}	0+1x10
	testhistogram3_bucket{le="-0.1", start="negative"}	0+2x10
	testhistogram3_bucket{le="0.3", start="negative"}	0+2x10
	testhistogram3_bucket{le="+Inf", start="negative"}	0+2x10
	testhistogram3_sum{start="negative"}	0+8x10
	testhistogram3_count{start="negative"}	0+2x10

load_with_nhcb 5m
	request_duration_seconds_bucket{job="job1", instance="ins1", le="0.1"}	0+1x10
	request_duration_seconds_bucket{job="job1", instance="ins1", le="0.2"}	0+3x10
	request_duration_seconds_bucket{job="job1", instance="ins1", le="+Inf"}	0+4x10
	request_duration_seconds_bucket{job="job1", instance="ins2", le="0.1"}	0+2x10
	request_duration_seconds_bucket{job="job1", instance="ins2", le="0.2"}	0+5x10
	request_duration_seconds_bucket{job="job1", instance="ins2", le="+Inf"}	0+6x10
	request_duration_seconds_bucket{job="job2", instance="ins1", le="0.1"}	0+3x10
	request_duration_seconds_bucket{job="job2", instance="ins1", le="0.2"}	0+4x10
	request_duration_seconds_bucket{job="job2", instance="ins1", le="+Inf"}	0+6x10
	request_duration_seconds_bucket{job="job2", instance="ins2", le="0.1"}	0+4x10
	request_duration_seconds_bucket{job="job2", instance="ins2", le="0.2"}	0+7x10
	request_duration_seconds_bucket{job="job2", instance="ins2", le="+Inf"}	0+9x10

eval instant at 50m testhistogram3_bucket{le=".2"} / ignoring(le) testhistogram3_count
	{start="positive"} 0.6363636363636364

eval instant at 50m rate(testhistogram3_bucket{le=".2"}[10m]) / ignoring(le) rate(testhistogram3_count[10m])
	{start="positive"} 0.6363636363636364

eval instant at 50m histogram_quantile(0, testhistogram3_bucket)
	{start="positive"} 0
	{start="negative"} -0.25

eval instant at 50m histogram_quantile(0.25, testhistogram3_bucket)
	{start="positive"} 0.055
	{start="negative"} -0.225

eval instant at 50m histogram_quantile(0.5, testhistogram3_bucket)
	{start="positive"} 0.125
	{start="negative"} -0.2

eval instant at 50m histogram_quantile(0.75, testhistogram3_bucket)
	{start="positive"} 0.45
	{start="negative"} -0.15

eval instant at 50m histogram_quantile(1, testhistogram3_bucket)
	{start="positive"} 1
	{start="negative"} -0.1

eval instant at 50m histogram_quantile(-0.1, testhistogram_bucket)
	{start="positive"} -Inf
	{start="negative"} -Inf

eval instant at 50m histogram_quantile(1.01, testhistogram_bucket)
	{start="positive"} +Inf
	{start="negative"} +Inf

eval instant at 50m histogram_quantile(NaN, testhistogram_bucket)
	{start="positive"} NaN
	{start="negative"} NaN

eval instant at 50m histogram_quantile(0, testhistogram_bucket)
	{start="positive"} 0
	{start="negative"} -0.2

eval instant at 50m histogram_quantile(1, testhistogram_bucket)
	{start="positive"} 1
	{start="negative"} 0.3

eval instant at 50m histogram_quantile(0.2, testhistogram_bucket)
	{start="positive"} 0.048
	{start="negative"} -0.2

eval instant at 50m histogram_quantile(0.5, testhistogram_bucket)
	{start="positive"} 0.15
	{start="negative"} -0.15

eval instant at 50m histogram_quantile(0.8, testhistogram_bucket)
	{start="positive"} 0.72
	{start="negative"} 0.3

eval instant at 50m histogram_quantile(0.2, rate(testhistogram_bucket[10m]))
	{start="positive"} 0.048
	{start="negative"} -0.2

eval instant at 50m histogram_quantile(0.8, rate(testhistogram_bucket[10m]))
	{start="positive"} 0.72
	{start="negative"} 0.3

eval instant at 7m histogram_quantile(1./6., testhistogram2_bucket)
	{} 1

eval instant at 7m histogram_quantile(0.5, testhistogram2_bucket)
	{} 3

eval instant at 7m histogram_quantile(5./6., testhistogram2_bucket)
	{} 5

eval instant at 47m histogram_quantile(5./6., rate(testhistogram2_bucket[15m]))
	{} 5

eval instant at 50m histogram_quantile(0.3, sum(rate(request_duration_seconds_bucket[10m])) by (le))
	{} 0.075

eval instant at 50m histogram_quantile(0.5, sum(rate(request_duration_seconds_bucket[10m])) by (le))
	{} 0.1277777777777778

eval instant at 50m histogram_quantile(0.5, avg(rate(request_duration_seconds_bucket[10m])) by (le))
	{} 0.12777777777777778

eval instant at 50m histogram_quantile(0.5, sum(rate(request_duration_seconds_bucket[10m])) by (le, instance))
	{instance="ins1"} 0.1333333333
	{instance="ins2"} 0.125

eval instant at 50m histogram_quantile(0.3, sum(rate(request_duration_seconds_bucket[10m])) by (le, job))
	{job="job1"} 0.1
	{job="job2"} 0.0642857142857143

eval instant at 50m histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m]))
	{instance="ins1", job="job1"} 0.15
	{instance="ins2", job="job1"} 0.13333333333333333
	{instance="ins1", job="job2"} 0.1
	{instance="ins2", job="job2"} 0.11666666666666667
"#,
    );
}

#[test]
fn operators_test() {
    run_script(
        r#"
load 5m
	http_requests_total{job="api-server", instance="0", group="production"}	0+10x10
	http_requests_total{job="api-server", instance="1", group="production"}	0+20x10
	http_requests_total{job="api-server", instance="0", group="canary"}	0+30x10
	http_requests_total{job="api-server", instance="1", group="canary"}	0+40x10
	http_requests_total{job="app-server", instance="0", group="production"}	0+50x10
	http_requests_total{job="app-server", instance="1", group="production"}	0+60x10
	http_requests_total{job="app-server", instance="0", group="canary"}	0+70x10
	http_requests_total{job="app-server", instance="1", group="canary"}	0+80x10

load 5m
	vector_matching_a{l="x"} 0+1x100
	vector_matching_a{l="y"} 0+2x50
	vector_matching_b{l="x"} 0+4x25

eval instant at 50m SUM(http_requests_total) BY (job) - COUNT(http_requests_total) BY (job)
	{job="api-server"} 996
	{job="app-server"} 2596

eval instant at 50m 2 - SUM(http_requests_total) BY (job)
	{job="api-server"} -998
	{job="app-server"} -2598

eval instant at 50m -http_requests_total{job="api-server",instance="0",group="production"}
  {job="api-server",instance="0",group="production"} -100

eval instant at 50m +http_requests_total{job="api-server",instance="0",group="production"}
  http_requests_total{job="api-server",instance="0",group="production"} 100

eval instant at 50m - - - SUM(http_requests_total) BY (job)
	{job="api-server"} -1000
	{job="app-server"} -2600

eval instant at 50m - - - 1
  -1

eval instant at 50m -2^---1*3
  -1.5

eval instant at 50m 2/-2^---1*3+2
  -10

eval instant at 50m -10^3 * - SUM(http_requests_total) BY (job) ^ -1
	{job="api-server"} 1
	{job="app-server"} 0.38461538461538464

eval instant at 50m SUM(http_requests_total) BY (job) % 0.3
	{job="api-server"} 0.1
	{job="app-server"} 0.2

eval instant at 50m SUM(http_requests_total) BY (job) % 2 ^ 3 ^ 2
	{job="api-server"} 488
	{job="app-server"} 40

eval instant at 50m COUNT(http_requests_total) BY (job) ^ COUNT(http_requests_total) BY (job)
	{job="api-server"} 256
	{job="app-server"} 256

eval instant at 50m SUM(http_requests_total) BY (job) / 0
	{job="api-server"} +Inf
	{job="app-server"} +Inf

eval instant at 50m 0 * http_requests_total{group="canary", instance="0", job="api-server"} % 0
	{group="canary", instance="0", job="api-server"} NaN

eval instant at 50m http_requests_total{job="api-server", group="canary"} + rate(http_requests_total{job="api-server"}[10m]) * 5 * 60
	{group="canary", instance="0", job="api-server"} 330
	{group="canary", instance="1", job="api-server"} 440

eval instant at 50m rate(http_requests_total[25m]) * 25 * 60
  {group="canary", instance="0", job="api-server"} 150
  {group="canary", instance="0", job="app-server"} 350
  {group="canary", instance="1", job="api-server"} 200
  {group="canary", instance="1", job="app-server"} 400
  {group="production", instance="0", job="api-server"} 50
  {group="production", instance="0", job="app-server"} 249.99999999999997
  {group="production", instance="1", job="api-server"} 100
  {group="production", instance="1", job="app-server"} 300

eval instant at 50m http_requests_total{group="canary"} and http_requests_total{instance="0"}
	http_requests_total{group="canary", instance="0", job="api-server"} 300
	http_requests_total{group="canary", instance="0", job="app-server"} 700

eval instant at 50m (http_requests_total{group="canary"} + 1) and on(instance) http_requests_total{instance="0", group="production"}
	{group="canary", instance="0", job="api-server"} 301
	{group="canary", instance="0", job="app-server"} 701

eval instant at 50m (http_requests_total{group="canary"} + 1) and ignoring(group, job) http_requests_total{instance="0", group="production"}
	{group="canary", instance="0", job="api-server"} 301
	{group="canary", instance="0", job="app-server"} 701

eval instant at 50m (http_requests_total{group="canary"} + 1) or http_requests_total{instance="1"}
	{group="canary", instance="0", job="api-server"} 301
	{group="canary", instance="0", job="app-server"} 701
	{group="canary", instance="1", job="api-server"} 401
	{group="canary", instance="1", job="app-server"} 801
	http_requests_total{group="production", instance="1", job="api-server"} 200
	http_requests_total{group="production", instance="1", job="app-server"} 600

eval instant at 50m (http_requests_total{group="canary"} + 1) or on(instance) (http_requests_total or cpu_count or vector_matching_a)
	{group="canary", instance="0", job="api-server"} 301
	{group="canary", instance="0", job="app-server"} 701
	{group="canary", instance="1", job="api-server"} 401
	{group="canary", instance="1", job="app-server"} 801
	vector_matching_a{l="x"} 10
	vector_matching_a{l="y"} 20

eval instant at 50m http_requests_total{group="canary"} unless http_requests_total{instance="0"}
	http_requests_total{group="canary", instance="1", job="api-server"} 400
	http_requests_total{group="canary", instance="1", job="app-server"} 800

eval instant at 50m http_requests_total{group="canary"} unless on(job) http_requests_total{instance="0"}

eval instant at 50m http_requests_total{group="canary"} / on(instance,job) http_requests_total{group="production"}
	{instance="0", job="api-server"} 3
	{instance="0", job="app-server"} 1.4
	{instance="1", job="api-server"} 2
	{instance="1", job="app-server"} 1.3333333333333333

eval instant at 50m http_requests_total{group="canary"} / ignoring(group) http_requests_total{group="production"}
	{instance="0", job="api-server"} 3
	{instance="0", job="app-server"} 1.4
	{instance="1", job="api-server"} 2
	{instance="1", job="app-server"} 1.3333333333333333

eval instant at 50m http_requests_total AND ON (dummy) vector(1)
	http_requests_total{group="canary", instance="0", job="api-server"} 300
	http_requests_total{group="canary", instance="0", job="app-server"} 700
	http_requests_total{group="canary", instance="1", job="api-server"} 400
	http_requests_total{group="canary", instance="1", job="app-server"} 800
	http_requests_total{group="production", instance="0", job="api-server"} 100
	http_requests_total{group="production", instance="0", job="app-server"} 500
	http_requests_total{group="production", instance="1", job="api-server"} 200
	http_requests_total{group="production", instance="1", job="app-server"} 600

eval instant at 50m SUM(http_requests_total) BY (job) > 1000
	{job="app-server"} 2600

eval instant at 50m 1000 < SUM(http_requests_total) BY (job)
	{job="app-server"} 2600

eval instant at 50m SUM(http_requests_total) BY (job) <= 1000
	{job="api-server"} 1000

eval instant at 50m SUM(http_requests_total) BY (job) == bool 1000
	{job="api-server"} 1
	{job="app-server"} 0

eval instant at 50m SUM(http_requests_total) BY (job) != bool SUM(http_requests_total) BY (job)
	{job="api-server"} 0
	{job="app-server"} 0

eval instant at 50m 0 == bool 1
	0

eval instant at 50m 1 == bool 1
	1

eval instant at 50m http_requests_total{job="api-server", instance="0", group="production"} == bool 100
	{job="api-server", instance="0", group="production"} 1

clear

load 5m
  node_var{instance="abc",job="node"} 2
  node_role{instance="abc",job="node",role="prometheus"} 1

load 5m
  node_cpu{instance="abc",job="node",mode="idle"} 3
  node_cpu{instance="abc",job="node",mode="user"} 1
  node_cpu{instance="def",job="node",mode="idle"} 8
  node_cpu{instance="def",job="node",mode="user"} 2

eval instant at 1m node_role * on (instance) group_right (role) node_var
  {instance="abc",job="node",role="prometheus"} 2

eval instant at 1m node_var * on (instance) group_left (role) node_role
  {instance="abc",job="node",role="prometheus"} 2

eval instant at 1m node_var * ignoring (role) group_left (role) node_role
  {instance="abc",job="node",role="prometheus"} 2

eval instant at 1m node_role * ignoring (role) group_right (role) node_var
  {instance="abc",job="node",role="prometheus"} 2

eval instant at 1m node_cpu * ignoring (role, mode) group_left (role) node_role
  {instance="abc",job="node",mode="idle",role="prometheus"} 3
  {instance="abc",job="node",mode="user",role="prometheus"} 1

eval instant at 1m node_cpu / on (instance) group_left sum by (instance,job)(node_cpu)
  {instance="abc",job="node",mode="idle"} .75
  {instance="abc",job="node",mode="user"} .25
  {instance="def",job="node",mode="idle"} .80
  {instance="def",job="node",mode="user"} .20

eval instant at 1m sum by (mode, job)(node_cpu) / on (job) group_left sum by (job)(node_cpu)
  {job="node",mode="idle"} 0.7857142857142857
  {job="node",mode="user"} 0.21428571428571427
"#,
    );
}

#[test]
fn functions_test_label_replace_label_join_and_sort() {
    run_script(
        r#"
load 5m
  testmetric{src="source-value-10",dst="original-destination-value"} 0
  testmetric{src="source-value-20",dst="original-destination-value"} 1

eval instant at 0m label_replace(testmetric, "dst", "destination-value-$1", "src", "source-value-(.*)")
  testmetric{src="source-value-10",dst="destination-value-10"} 0
  testmetric{src="source-value-20",dst="destination-value-20"} 1

eval instant at 0m label_replace(testmetric, "dst", "destination-value-$1", "src", "value-(.*)")
  testmetric{src="source-value-10",dst="original-destination-value"} 0
  testmetric{src="source-value-20",dst="original-destination-value"} 1

eval instant at 0m label_replace(testmetric, "dst", "$1-value-$2", "src", "(.*)-value-(.*)")
  testmetric{src="source-value-10",dst="source-value-10"} 0
  testmetric{src="source-value-20",dst="source-value-20"} 1

eval instant at 0m label_replace(testmetric, "dst", "value-$1", "nonexistent-src", "source-value-(.*)")
  testmetric{src="source-value-10",dst="original-destination-value"} 0
  testmetric{src="source-value-20",dst="original-destination-value"} 1

eval instant at 0m label_replace(testmetric, "dst", "value-$1", "nonexistent-src", "(.*)")
  testmetric{src="source-value-10",dst="value-"} 0
  testmetric{src="source-value-20",dst="value-"} 1

eval instant at 0m label_replace((((testmetric))), (("dst")), (("value-$1")), (("src")), (("non-matching-regex")))
  testmetric{src="source-value-10",dst="original-destination-value"} 0
  testmetric{src="source-value-20",dst="original-destination-value"} 1

eval instant at 0m label_replace(testmetric, "dst", "", "dst", ".*")
  testmetric{src="source-value-10"} 0
  testmetric{src="source-value-20"} 1

eval instant at 0m label_replace(testmetric, "dst", "value-$1", "src", "(.*")
  expect fail

eval instant at 0m label_replace(testmetric, "src", "", "", "")
  expect fail

clear

load 5m
  testmetric{src="a",src1="b",src2="c",dst="original-destination-value"} 0
  testmetric{src="d",src1="e",src2="f",dst="original-destination-value"} 1
  dup{label="a", this="a"} 1.0
  dup{label="b", this="a"} 1.0

eval instant at 0m label_join(testmetric, "dst", "-", "src", "src1", "src2")
  testmetric{src="a",src1="b",src2="c",dst="a-b-c"} 0
  testmetric{src="d",src1="e",src2="f",dst="d-e-f"} 1

eval instant at 0m label_join(testmetric, "dst", "-", "src", "src3", "src1")
  testmetric{src="a",src1="b",src2="c",dst="a--b"} 0
  testmetric{src="d",src1="e",src2="f",dst="d--e"} 1

eval instant at 0m label_join(testmetric, "dst", "", "emptysrc", "emptysrc1", "emptysrc2")
  testmetric{src="a",src1="b",src2="c"} 0
  testmetric{src="d",src1="e",src2="f"} 1

eval instant at 0m label_join(testmetric, "dst", ", ")
	  testmetric{src="a",src1="b",src2="c"} 0
	  testmetric{src="d",src1="e",src2="f"} 1

eval instant at 0m label_join(dup, "label", "", "this")
  expect fail msg:vector cannot contain metrics with the same labelset

clear
load 5m
	http_requests{job="api-server", instance="0", group="production"}	0+10x10
	http_requests{job="api-server", instance="1", group="production"}	0+20x10
	http_requests{job="api-server", instance="0", group="canary"}		0+30x10
	http_requests{job="api-server", instance="1", group="canary"}		0+40x10
	http_requests{job="api-server", instance="2", group="canary"}		NaN NaN NaN NaN NaN NaN NaN NaN NaN NaN NaN
	http_requests{job="app-server", instance="0", group="production"}	0+50x10
	http_requests{job="app-server", instance="1", group="production"}	0+60x10
	http_requests{job="app-server", instance="0", group="canary"}		0+70x10
	http_requests{job="app-server", instance="1", group="canary"}		0+80x10

eval_ordered instant at 50m sort(http_requests)
	http_requests{group="production", instance="0", job="api-server"} 100
	http_requests{group="production", instance="1", job="api-server"} 200
	http_requests{group="canary", instance="0", job="api-server"} 300
	http_requests{group="canary", instance="1", job="api-server"} 400
	http_requests{group="production", instance="0", job="app-server"} 500
	http_requests{group="production", instance="1", job="app-server"} 600
	http_requests{group="canary", instance="0", job="app-server"} 700
	http_requests{group="canary", instance="1", job="app-server"} 800
	http_requests{group="canary", instance="2", job="api-server"} NaN

eval_ordered instant at 50m sort_desc(http_requests)
	http_requests{group="canary", instance="1", job="app-server"} 800
	http_requests{group="canary", instance="0", job="app-server"} 700
	http_requests{group="production", instance="1", job="app-server"} 600
	http_requests{group="production", instance="0", job="app-server"} 500
	http_requests{group="canary", instance="1", job="api-server"} 400
	http_requests{group="canary", instance="0", job="api-server"} 300
	http_requests{group="production", instance="1", job="api-server"} 200
	http_requests{group="production", instance="0", job="api-server"} 100
	http_requests{group="canary", instance="2", job="api-server"} NaN
"#,
    );
}

#[test]
fn subquery_test() {
    run_script(
        r#"
load 10s
  metric 1 2

# Evaluation before 0s gets no sample.
eval instant at 10s sum_over_time(metric[50s:10s])
  {} 3

eval instant at 10s sum_over_time(metric[50s:5s])
  {} 4

# Every evaluation yields the last value, i.e. 2
eval instant at 5m sum_over_time(metric[50s:10s])
  {} 10

# Series becomes stale at 5m10s (5m after last sample)
# Hence subquery gets a single sample at 5m10s.
eval instant at 5m59s sum_over_time(metric[60s:10s])
  {} 2

eval instant at 10s rate(metric[20s:10s])
  {} 0.1

eval instant at 20s rate(metric[20s:5s])
  {} 0.06666666666666667

clear

load 10s
  http_requests{job="api-server", instance="1", group="production"} 0+20x1000 200+30x1000
  http_requests{job="api-server", instance="0", group="production"} 0+10x1000 100+30x1000
  http_requests{job="api-server", instance="0", group="canary"}  0+30x1000 300+80x1000
  http_requests{job="api-server", instance="1", group="canary"}  0+40x2000

eval instant at 8000s rate(http_requests{group=~"pro.*"}[1m:10s])
  {job="api-server", instance="0", group="production"} 1
  {job="api-server", instance="1", group="production"} 2

eval instant at 20000s avg_over_time(rate(http_requests[1m])[1m:1s])
  {job="api-server", instance="0", group="canary"}     8
  {job="api-server", instance="1", group="canary"}     4
  {job="api-server", instance="1", group="production"} 3
  {job="api-server", instance="0", group="production"} 3

clear

load 10s
  metric1 0+1x1000
  metric2 0+2x1000
  metric3 0+3x1000

eval instant at 1000s sum_over_time(metric1[30s:10s])
  {} 297

eval instant at 1000s sum_over_time(metric1[30s:5s])
  {} 591

eval instant at 1010s sum_over_time(metric1[30s:10s] offset 10s)
  {} 297

eval instant at 1010s sum_over_time(metric1[30s:10s] offset 9s)
  {} 297

eval instant at 1010s sum_over_time(metric1[30s:10s] offset 3s)
  {} 297

eval instant at 1010s sum_over_time((metric1)[30s:10s] offset 3s)
  {} 297

eval instant at 1000s rate(sum_over_time(metric1[30s:10s])[50s:10s])
  {} 0.30000000000000004

eval instant at 1000s rate(sum_over_time(metric2[30s:10s])[50s:10s])
  {} 0.6000000000000001

eval instant at 1000s rate(sum_over_time((metric1+metric2+metric3)[30s:10s])[30s:10s])
  {} 1.8

clear

# (The load line is cut after its 20th value; these evaluations use the first 12.)
load 7s
  metric 1 1 2 3 5 8 13 21 34 55 89 144 233 377 610 987 1597 2584 4181 6765

eval instant at 80s rate(metric[1m])
  {} 2.517857143

eval instant at 80s rate(metric[1m:10s])
  {} 2.4

eval instant at 20s min_over_time(metric[10s])
  {} 2

eval instant at 20s min_over_time(metric[10s:10s])
  {} 2
"#,
    );
}

#[test]
fn functions_test_dates_and_absent_over_time() {
    run_script(
        r#"
eval instant at 0m year()
  {} 1970

eval instant at 0m year(vector(1136239445))
  {} 2006

eval instant at 0m month()
  {} 1

eval instant at 0m month(vector(1136239445))
  {} 1

eval instant at 0m day_of_month()
  {} 1

eval instant at 0m day_of_month(vector(1136239445))
  {} 2

eval instant at 0m day_of_year()
  {} 1

eval instant at 0m day_of_year(vector(1136239445))
  {} 2

# Thursday.
eval instant at 0m day_of_week()
  {} 4

eval instant at 0m day_of_week(vector(1136239445))
  {} 1

eval instant at 0m hour()
  {} 0

eval instant at 0m hour(vector(1136239445))
  {} 22

eval instant at 0m minute()
  {} 0

eval instant at 0m minute(vector(1136239445))
  {} 4

# 2008-12-31 23:59:59 just before leap second.
eval instant at 0m year(vector(1230767999))
  {} 2008

# 2009-01-01 00:00:00 just after leap second.
eval instant at 0m year(vector(1230768000))
  {} 2009

# 2016-02-29 23:59:59 February 29th in leap year.
eval instant at 0m month(vector(1456790399)) + day_of_month(vector(1456790399)) / 100
  {} 2.29

# 2016-03-01 00:00:00 March 1st in leap year.
eval instant at 0m month(vector(1456790400)) + day_of_month(vector(1456790400)) / 100
  {} 3.01

# 2016-12-31 13:37:00 366th day in leap year.
eval instant at 0m day_of_year(vector(1483191420))
  {} 366

# 2022-12-31 13:37:00 365th day in non-leap year.
eval instant at 0m day_of_year(vector(1672493820))
  {} 365

# February 1st 2016 in leap year.
eval instant at 0m days_in_month(vector(1454284800))
  {} 29

# February 1st 2017 not in leap year.
eval instant at 0m days_in_month(vector(1485907200))
  {} 28

clear

eval instant at 1m absent_over_time(http_requests_total[5m])
    {} 1

eval instant at 1m absent_over_time(http_requests_total{handler="/foo"}[5m])
    {handler="/foo"} 1

eval instant at 1m absent_over_time(http_requests_total{handler!="/foo"}[5m])
    {} 1

eval instant at 1m absent_over_time(http_requests_total{handler="/foo", handler="/bar", handler="/foobar"}[5m])
    {} 1

eval instant at 1m absent_over_time(rate(nonexistent[5m])[5m:])
    {} 1

eval instant at 1m absent_over_time(http_requests_total{handler="/foo", handler="/bar", instance="127.0.0.1"}[5m])
    {instance="127.0.0.1"} 1
"#,
    );
}

#[test]
fn aggregators_test_count_values() {
    // Evaluated at 1m where the stored file says 5m: at 5m its single samples are exactly
    // 5 minutes old, outside Prometheus 3's left-open lookback (see tests.rs).
    run_script(
        r#"
load 5m
	version{job="api-server", instance="0", group="production"}	6
	version{job="api-server", instance="1", group="production"}	6
	version{job="api-server", instance="2", group="production"}	6
	version{job="api-server", instance="0", group="canary"}		8
	version{job="api-server", instance="1", group="canary"}		8
	version{job="app-server", instance="0", group="production"}	6
	version{job="app-server", instance="1", group="production"}	6
	version{job="app-server", instance="0", group="canary"}		7
	version{job="app-server", instance="1", group="canary"}		7

eval instant at 1m count_values("version", version)
	{version="6"} 5
	{version="7"} 2
	{version="8"} 2

eval instant at 1m count_values((((("version")))), version)
       {version="6"} 5
       {version="7"} 2
       {version="8"} 2

eval instant at 1m count_values without (instance)("version", version)
	{job="api-server", group="production", version="6"} 3
	{job="api-server", group="canary", version="8"} 2
	{job="app-server", group="production", version="6"} 2
	{job="app-server", group="canary", version="7"} 2

eval instant at 1m count_values without (instance)("job", version)
	{job="6", group="production"} 5
	{job="8", group="canary"} 2
	{job="7", group="canary"} 2

eval instant at 1m count_values by (job, group)("job", version)
	{job="6", group="production"} 5
	{job="8", group="canary"} 2
	{job="7", group="canary"} 2
"#,
    );
}
