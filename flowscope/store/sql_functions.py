"""The functions users' SQL may call: an allow-list, checked on ClickHouse's own parse tree.

Anything not listed is refused by name, so a new ClickHouse function or an alias of a refused one
(FQDN for hostName, ...) is refused until someone decides it is safe. Names compare
case-insensitively. Aggregates also pass with ClickHouse's combinator suffixes (sumIf,
uniqExactArray, avgOrNull, ...).
"""

from __future__ import annotations

AGGREGATES = """
count sum avg min max any anylast anyheavy argmin argmax uniq uniqexact uniqcombined uniqcombined64 uniqhll12
uniqtheta groupbitand groupbitor groupbitxor grouparray grouparraysample grouparraysorted groupuniqarray
grouparrayinsertat grouparraymovingsum grouparraymovingavg groupconcat topk topkweighted median medianexact
quantile quantiles quantileexact quantilesexact quantiletiming quantilestiming quantiletdigest quantilestdigest
quantiledeterministic quantileexactweighted quantilesexactweighted quantilebfloat16 quantileddsketch
medianbfloat16 mediantiming mediantdigest varpop varsamp stddevpop stddevsamp covarpop covarsamp corr
skewpop skewsamp kurtpop kurtsamp entropy histogram summap minmap maxmap avgweighted sumwithoverflow sumkahan
simplelinearregression stochasticlinearregression categoricalinformationvalue retention windowfunnel
sequencematch sequencecount deltasum deltasumtimestamp boundingratio rankcorr exponentialmovingaverage
first_value last_value nth_value row_number rank dense_rank percent_rank cume_dist ntile lag lead laginframe
leadinframe sparkbar contingency cramersv theilsu any_value anyvalue stddev variance var_pop var_samp
stddev_pop stddev_samp covar_pop covar_samp count_distinct approx_top_k approx_count_distinct
""".split()

COMBINATORS = ("if", "array", "distinct", "ornull", "ordefault", "state", "merge", "mergestate", "foreach",
               "resample", "map", "simplestate")

SCALARS = """
plus minus multiply divide intdiv intdivorzero modulo moduloorzero positivemodulo negate abs gcd lcm
divideornull intdivornull moduloornull
equals notequals less greater lessorequals greaterorequals and or not xor in notin globalin globalnotin
nullin notnullin like notlike ilike notilike match multimatchany multisearchany position positioncaseinsensitive
positionutf8 locate countsubstrings countmatches extract extractall extractallgroups extractgroups
if multiif ifnull nullif coalesce assumenotnull tonullable isnull isnotnull isnullable isfinite isinfinite isnan
lambda tuple tupleelement array arrayelement arrayjoin has hasall hasany hassubstr indexof length empty notempty
arraymap arrayfilter arrayexists arrayall arraycount arraysum arrayavg arraymin arraymax arraysort arrayreversesort
arrayreverse arrayslice arrayconcat arraydistinct arrayuniq arrayenumerate arrayenumerateuniq arraypushback
arraypushfront arraypopback arraypopfront arrayresize arrayzip arrayflatten arraycompact arrayfirst arraylast
arrayfirstindex arraylastindex arrayreduce arraystringconcat arrayintersect arraycumsum arraydifference
arraysplit arrayshuffle arraypartialsort arrayproduct range emptyarrayuint8 emptyarraystring splitbychar
splitbystring splitbyregexp splitbywhitespace splitbynonalpha alphatokens arraywithconstant
mapkeys mapvalues mapcontains map
lower upper lowerutf8 upperutf8 concat concatwithseparator substring substr substringutf8 left right leftutf8
rightutf8 trim trimleft trimright trimboth ltrim rtrim replace replaceone replaceall replaceregexpone
replaceregexpall reverse reverseutf8 repeat leftpad rightpad lpad rpad format startswith endswith
lengthutf8 char_length character_length octet_length ascii char base64encode base64decode trybase64decode hex unhex
bin unbin tostring tofixedstring tostringcuttozero touuid touuidornull normalizeutf8nfc
empty notempty formatreadablesize formatreadablequantity formatreadabletimedelta formatreadabledecimalsize
bar visibleWidth visiblewidth
ngramdistance ngramsearch
domain domainwithoutwww topleveldomain firstsignificantsubdomain cuttofirstsignificantsubdomain protocol path
pathfull querystring fragment extracturlparameter cutquerystring cutfragment netloc port
now now64 today yesterday todatetime todatetime64 todate todate32 todatetimeornull todatetimeorzero
todatetime64ornull todateornull todateorzero parsedatetime parsedatetimebesteffort parsedatetimebesteffortornull
parsedatetime64besteffort parsedatetime64besteffortornull parsedatetimeornull parsedatetimebesteffortorzero
toyear toquarter tomonth todayofyear todayofmonth todayofweek tohour tominute tosecond tomillisecond tounixtimestamp
tounixtimestamp64milli fromunixtimestamp fromunixtimestamp64milli tostartofyear tostartofquarter tostartofmonth
tostartofweek tomonday tostartofday tostartofhour tostartofminute tostartofsecond tostartoffiveminutes
tostartoffiveminute tostartoftenminutes tostartoffifteenminutes tostartofinterval totime toyyyymm toyyyymmdd
toyyyymmddhhmmss toisoyear toisoweek toweek toyearweek todayname tomonthname timeslot timeslots datediff
date_diff dateadd date_add datesub date_sub timestampadd timestampsub date_trunc datetrunc addseconds addminutes
addhours adddays addweeks addmonths addquarters addyears subtractseconds subtractminutes subtracthours
subtractdays subtractweeks subtractmonths subtractyears formatdatetime formatdatetimeinjodasyntax totimezone
totimezone timezoneof tointervalsecond tointervalminute tointervalhour tointervalday tointervalweek
tointervalmonth tointervalquarter tointervalyear tointervalmillisecond age tolastdayofmonth
torelativeminutenum torelativehournum torelativedaynum torelativesecondnum
toint8 toint16 toint32 toint64 toint128 toint256 touint8 touint16 touint32 touint64 touint128 touint256
tofloat32 tofloat64 todecimal32 todecimal64 todecimal128 toint8ornull toint16ornull toint32ornull toint64ornull
touint8ornull touint16ornull touint32ornull touint64ornull tofloat32ornull tofloat64ornull toint32orzero
toint64orzero touint32orzero touint64orzero tofloat64orzero reinterpretasuint32 tobool cast accuratecast
accuratecastornull todecimalstring typename totypename
round roundbankers floor ceil ceiling trunc truncate sqrt cbrt exp exp2 exp10 log ln log2 log10 log1p pow power
sign pi e sin cos tan asin acos atan atan2 sinh cosh tanh greatest least rounddown roundtoexp2 roundduration
roundage bitand bitor bitxor bitnot bitshiftleft bitshiftright bittest bitcount
ipv4numtostring ipv4stringtonum ipv4numtostringclassc ipv6numtostring ipv6stringtonum ipv4toipv6 toipv4
toipv6 toipv4ornull toipv6ornull toipv4orzero toipv6orzero isipv4string isipv6string isipaddressinrange
ipv4cidrtorange ipv6cidrtorange ipv4stringtonumornull ipv6stringtonumornull cutipv6 macnumtostring
macstringtonum macstringtooui
cityhash64 siphash64 siphash128 xxhash32 xxhash64 murmurhash2_32 murmurhash2_64 murmurhash3_32 murmurhash3_64
murmurhash3_128 farmhash64 inthash32 inthash64 javahash md5 sha1 sha224 sha256 sha512 halfmd5 crc32 wyhash64
rand rand32 rand64 randconstant generateuuidv4 uuidstringtonum uuidnumtostring
runningdifference runningaccumulate neighbor rownumberinblock rownumberinallblocks
finalizeaggregation initializeaggregation
jsonextract jsonextractstring jsonextractint jsonextractuint jsonextractfloat jsonextractbool jsonextractraw
jsonhas jsonlength jsonextractkeys visitparamextractstring simplejsonextractstring
tojsonstring
""".split()

#: table functions that read no data of anyone's (for generating rows)
TABLE_FUNCTIONS = {"numbers", "zeros", "generate_series", "generateseries"}

ALLOWED = set(AGGREGATES) | set(SCALARS)


def allowed(name: str) -> bool:
    n = name.lower()
    if n in ALLOWED:
        return True
    stripped = True
    while stripped:
        stripped = False
        for suffix in COMBINATORS:
            if n.endswith(suffix) and len(n) > len(suffix):
                n = n[: -len(suffix)]
                stripped = True
                if n in AGGREGATES:
                    return True
    return False
