"""Which protobuf class of IB's client carries each message id (server version >= 201).

Generated from ibapi 10.50.2 by reading its own dispatch: ``Decoder.msgId2handleInfoProtoBuf``
(TWS -> client: the class each ``process...ProtoBuf`` handler parses) and the ``EClient``
methods ``...ProtoBuf(self, request: <Class>)`` that send ``OUT.<id> + PROTOBUF_MSG_ID``
(client -> TWS). Values are ``<module under ibapi.protobuf>.<class>``. Regenerate with
``python tools/gen_protobuf_table.py`` after changing the ibapi pin.
"""

from __future__ import annotations

__all__ = ["INCOMING", "OUTGOING"]

#: TWS -> client (ibapi.message.IN)
INCOMING: dict[int, str] = {
    1: "TickPrice_pb2.TickPrice",  # TICK_PRICE
    2: "TickSize_pb2.TickSize",  # TICK_SIZE
    3: "OrderStatus_pb2.OrderStatus",  # ORDER_STATUS
    4: "ErrorMessage_pb2.ErrorMessage",  # ERR_MSG
    5: "OpenOrder_pb2.OpenOrder",  # OPEN_ORDER
    6: "AccountValue_pb2.AccountValue",  # ACCT_VALUE
    7: "PortfolioValue_pb2.PortfolioValue",  # PORTFOLIO_VALUE
    8: "AccountUpdateTime_pb2.AccountUpdateTime",  # ACCT_UPDATE_TIME
    9: "NextValidId_pb2.NextValidId",  # NEXT_VALID_ID
    10: "ContractData_pb2.ContractData",  # CONTRACT_DATA
    11: "ExecutionDetails_pb2.ExecutionDetails",  # EXECUTION_DATA
    12: "MarketDepth_pb2.MarketDepth",  # MARKET_DEPTH
    13: "MarketDepthL2_pb2.MarketDepthL2",  # MARKET_DEPTH_L2
    14: "NewsBulletin_pb2.NewsBulletin",  # NEWS_BULLETINS
    15: "ManagedAccounts_pb2.ManagedAccounts",  # MANAGED_ACCTS
    16: "ReceiveFA_pb2.ReceiveFA",  # RECEIVE_FA
    17: "HistoricalData_pb2.HistoricalData",  # HISTORICAL_DATA
    18: "ContractData_pb2.ContractData",  # BOND_CONTRACT_DATA
    19: "ScannerParameters_pb2.ScannerParameters",  # SCANNER_PARAMETERS
    20: "ScannerData_pb2.ScannerData",  # SCANNER_DATA
    21: "TickOptionComputation_pb2.TickOptionComputation",  # TICK_OPTION_COMPUTATION
    45: "TickGeneric_pb2.TickGeneric",  # TICK_GENERIC
    46: "TickString_pb2.TickString",  # TICK_STRING
    49: "CurrentTime_pb2.CurrentTime",  # CURRENT_TIME
    50: "RealTimeBarTick_pb2.RealTimeBarTick",  # REAL_TIME_BARS
    52: "ContractDataEnd_pb2.ContractDataEnd",  # CONTRACT_DATA_END
    53: "OpenOrdersEnd_pb2.OpenOrdersEnd",  # OPEN_ORDER_END
    54: "AccountDataEnd_pb2.AccountDataEnd",  # ACCT_DOWNLOAD_END
    55: "ExecutionDetailsEnd_pb2.ExecutionDetailsEnd",  # EXECUTION_DATA_END
    57: "TickSnapshotEnd_pb2.TickSnapshotEnd",  # TICK_SNAPSHOT_END
    58: "MarketDataType_pb2.MarketDataType",  # MARKET_DATA_TYPE
    59: "CommissionAndFeesReport_pb2.CommissionAndFeesReport",  # COMMISSION_AND_FEES_REPORT
    61: "Position_pb2.Position",  # POSITION_DATA
    62: "PositionEnd_pb2.PositionEnd",  # POSITION_END
    63: "AccountSummary_pb2.AccountSummary",  # ACCOUNT_SUMMARY
    64: "AccountSummaryEnd_pb2.AccountSummaryEnd",  # ACCOUNT_SUMMARY_END
    65: "VerifyMessageApi_pb2.VerifyMessageApi",  # VERIFY_MESSAGE_API
    66: "VerifyCompleted_pb2.VerifyCompleted",  # VERIFY_COMPLETED
    67: "DisplayGroupList_pb2.DisplayGroupList",  # DISPLAY_GROUP_LIST
    68: "DisplayGroupUpdated_pb2.DisplayGroupUpdated",  # DISPLAY_GROUP_UPDATED
    71: "PositionMulti_pb2.PositionMulti",  # POSITION_MULTI
    72: "PositionMultiEnd_pb2.PositionMultiEnd",  # POSITION_MULTI_END
    73: "AccountUpdateMulti_pb2.AccountUpdateMulti",  # ACCOUNT_UPDATE_MULTI
    74: "AccountUpdateMultiEnd_pb2.AccountUpdateMultiEnd",  # ACCOUNT_UPDATE_MULTI_END
    75: "SecDefOptParameter_pb2.SecDefOptParameter",  # SECURITY_DEFINITION_OPTION_PARAMETER
    76: "SecDefOptParameterEnd_pb2.SecDefOptParameterEnd",  # SECURITY_DEFINITION_OPTION_PARAMETER_END
    77: "SoftDollarTiers_pb2.SoftDollarTiers",  # SOFT_DOLLAR_TIERS
    78: "FamilyCodes_pb2.FamilyCodes",  # FAMILY_CODES
    79: "SymbolSamples_pb2.SymbolSamples",  # SYMBOL_SAMPLES
    80: "MarketDepthExchanges_pb2.MarketDepthExchanges",  # MKT_DEPTH_EXCHANGES
    81: "TickReqParams_pb2.TickReqParams",  # TICK_REQ_PARAMS
    82: "SmartComponents_pb2.SmartComponents",  # SMART_COMPONENTS
    83: "NewsArticle_pb2.NewsArticle",  # NEWS_ARTICLE
    84: "TickNews_pb2.TickNews",  # TICK_NEWS
    85: "NewsProviders_pb2.NewsProviders",  # NEWS_PROVIDERS
    86: "HistoricalNews_pb2.HistoricalNews",  # HISTORICAL_NEWS
    87: "HistoricalNewsEnd_pb2.HistoricalNewsEnd",  # HISTORICAL_NEWS_END
    88: "HeadTimestamp_pb2.HeadTimestamp",  # HEAD_TIMESTAMP
    89: "HistogramData_pb2.HistogramData",  # HISTOGRAM_DATA
    90: "HistoricalDataUpdate_pb2.HistoricalDataUpdate",  # HISTORICAL_DATA_UPDATE
    91: "RerouteMarketDataRequest_pb2.RerouteMarketDataRequest",  # REROUTE_MKT_DATA_REQ
    92: "RerouteMarketDepthRequest_pb2.RerouteMarketDepthRequest",  # REROUTE_MKT_DEPTH_REQ
    93: "MarketRule_pb2.MarketRule",  # MARKET_RULE
    94: "PnL_pb2.PnL",  # PNL
    95: "PnLSingle_pb2.PnLSingle",  # PNL_SINGLE
    96: "HistoricalTicks_pb2.HistoricalTicks",  # HISTORICAL_TICKS
    97: "HistoricalTicksBidAsk_pb2.HistoricalTicksBidAsk",  # HISTORICAL_TICKS_BID_ASK
    98: "HistoricalTicksLast_pb2.HistoricalTicksLast",  # HISTORICAL_TICKS_LAST
    99: "TickByTickData_pb2.TickByTickData",  # TICK_BY_TICK
    100: "OrderBound_pb2.OrderBound",  # ORDER_BOUND
    101: "CompletedOrder_pb2.CompletedOrder",  # COMPLETED_ORDER
    102: "CompletedOrdersEnd_pb2.CompletedOrdersEnd",  # COMPLETED_ORDERS_END
    103: "ReplaceFAEnd_pb2.ReplaceFAEnd",  # REPLACE_FA_END
    104: "WshMetaData_pb2.WshMetaData",  # WSH_META_DATA
    105: "WshEventData_pb2.WshEventData",  # WSH_EVENT_DATA
    106: "HistoricalSchedule_pb2.HistoricalSchedule",  # HISTORICAL_SCHEDULE
    107: "UserInfo_pb2.UserInfo",  # USER_INFO
    108: "HistoricalDataEnd_pb2.HistoricalDataEnd",  # HISTORICAL_DATA_END
    109: "CurrentTimeInMillis_pb2.CurrentTimeInMillis",  # CURRENT_TIME_IN_MILLIS
    110: "ConfigResponse_pb2.ConfigResponse",  # CONFIG_RESPONSE
    111: "UpdateConfigResponse_pb2.UpdateConfigResponse",  # UPDATE_CONFIG_RESPONSE
}

#: client -> TWS (ibapi.message.OUT)
OUTGOING: dict[int, str] = {
    1: "MarketDataRequest_pb2.MarketDataRequest",  # REQ_MKT_DATA
    2: "CancelMarketData_pb2.CancelMarketData",  # CANCEL_MKT_DATA
    3: "PlaceOrderRequest_pb2.PlaceOrderRequest",  # PLACE_ORDER
    4: "CancelOrderRequest_pb2.CancelOrderRequest",  # CANCEL_ORDER
    5: "OpenOrdersRequest_pb2.OpenOrdersRequest",  # REQ_OPEN_ORDERS
    6: "AccountDataRequest_pb2.AccountDataRequest",  # REQ_ACCT_DATA
    7: "ExecutionRequest_pb2.ExecutionRequest",  # REQ_EXECUTIONS
    8: "IdsRequest_pb2.IdsRequest",  # REQ_IDS
    9: "ContractDataRequest_pb2.ContractDataRequest",  # REQ_CONTRACT_DATA
    10: "MarketDepthRequest_pb2.MarketDepthRequest",  # REQ_MKT_DEPTH
    11: "CancelMarketDepth_pb2.CancelMarketDepth",  # CANCEL_MKT_DEPTH
    12: "NewsBulletinsRequest_pb2.NewsBulletinsRequest",  # REQ_NEWS_BULLETINS
    13: "CancelNewsBulletins_pb2.CancelNewsBulletins",  # CANCEL_NEWS_BULLETINS
    14: "SetServerLogLevelRequest_pb2.SetServerLogLevelRequest",  # SET_SERVER_LOGLEVEL
    15: "AutoOpenOrdersRequest_pb2.AutoOpenOrdersRequest",  # REQ_AUTO_OPEN_ORDERS
    16: "AllOpenOrdersRequest_pb2.AllOpenOrdersRequest",  # REQ_ALL_OPEN_ORDERS
    17: "ManagedAccountsRequest_pb2.ManagedAccountsRequest",  # REQ_MANAGED_ACCTS
    18: "FARequest_pb2.FARequest",  # REQ_FA
    19: "FAReplace_pb2.FAReplace",  # REPLACE_FA
    20: "HistoricalDataRequest_pb2.HistoricalDataRequest",  # REQ_HISTORICAL_DATA
    21: "ExerciseOptionsRequest_pb2.ExerciseOptionsRequest",  # EXERCISE_OPTIONS
    22: "ScannerSubscriptionRequest_pb2.ScannerSubscriptionRequest",  # REQ_SCANNER_SUBSCRIPTION
    23: "CancelScannerSubscription_pb2.CancelScannerSubscription",  # CANCEL_SCANNER_SUBSCRIPTION
    24: "ScannerParametersRequest_pb2.ScannerParametersRequest",  # REQ_SCANNER_PARAMETERS
    25: "CancelHistoricalData_pb2.CancelHistoricalData",  # CANCEL_HISTORICAL_DATA
    49: "CurrentTimeRequest_pb2.CurrentTimeRequest",  # REQ_CURRENT_TIME
    50: "RealTimeBarsRequest_pb2.RealTimeBarsRequest",  # REQ_REAL_TIME_BARS
    51: "CancelRealTimeBars_pb2.CancelRealTimeBars",  # CANCEL_REAL_TIME_BARS
    54: "CalculateImpliedVolatilityRequest_pb2.CalculateImpliedVolatilityRequest",  # REQ_CALC_IMPLIED_VOLAT
    55: "CalculateOptionPriceRequest_pb2.CalculateOptionPriceRequest",  # REQ_CALC_OPTION_PRICE
    56: "CancelCalculateImpliedVolatility_pb2.CancelCalculateImpliedVolatility",  # CANCEL_CALC_IMPLIED_VOLAT
    57: "CancelCalculateOptionPrice_pb2.CancelCalculateOptionPrice",  # CANCEL_CALC_OPTION_PRICE
    58: "GlobalCancelRequest_pb2.GlobalCancelRequest",  # REQ_GLOBAL_CANCEL
    59: "MarketDataTypeRequest_pb2.MarketDataTypeRequest",  # REQ_MARKET_DATA_TYPE
    61: "PositionsRequest_pb2.PositionsRequest",  # REQ_POSITIONS
    62: "AccountSummaryRequest_pb2.AccountSummaryRequest",  # REQ_ACCOUNT_SUMMARY
    63: "CancelAccountSummary_pb2.CancelAccountSummary",  # CANCEL_ACCOUNT_SUMMARY
    64: "CancelPositions_pb2.CancelPositions",  # CANCEL_POSITIONS
    65: "VerifyRequest_pb2.VerifyRequest",  # VERIFY_REQUEST
    66: "VerifyMessageRequest_pb2.VerifyMessageRequest",  # VERIFY_MESSAGE
    67: "QueryDisplayGroupsRequest_pb2.QueryDisplayGroupsRequest",  # QUERY_DISPLAY_GROUPS
    68: "SubscribeToGroupEventsRequest_pb2.SubscribeToGroupEventsRequest",  # SUBSCRIBE_TO_GROUP_EVENTS
    69: "UpdateDisplayGroupRequest_pb2.UpdateDisplayGroupRequest",  # UPDATE_DISPLAY_GROUP
    70: "UnsubscribeFromGroupEventsRequest_pb2.UnsubscribeFromGroupEventsRequest",  # UNSUBSCRIBE_FROM_GROUP_EVENTS
    71: "StartApiRequest_pb2.StartApiRequest",  # START_API
    74: "PositionsMultiRequest_pb2.PositionsMultiRequest",  # REQ_POSITIONS_MULTI
    75: "CancelPositionsMulti_pb2.CancelPositionsMulti",  # CANCEL_POSITIONS_MULTI
    76: "AccountUpdatesMultiRequest_pb2.AccountUpdatesMultiRequest",  # REQ_ACCOUNT_UPDATES_MULTI
    77: "CancelAccountUpdatesMulti_pb2.CancelAccountUpdatesMulti",  # CANCEL_ACCOUNT_UPDATES_MULTI
    78: "SecDefOptParamsRequest_pb2.SecDefOptParamsRequest",  # REQ_SEC_DEF_OPT_PARAMS
    79: "SoftDollarTiersRequest_pb2.SoftDollarTiersRequest",  # REQ_SOFT_DOLLAR_TIERS
    80: "FamilyCodesRequest_pb2.FamilyCodesRequest",  # REQ_FAMILY_CODES
    81: "MatchingSymbolsRequest_pb2.MatchingSymbolsRequest",  # REQ_MATCHING_SYMBOLS
    82: "MarketDepthExchangesRequest_pb2.MarketDepthExchangesRequest",  # REQ_MKT_DEPTH_EXCHANGES
    83: "SmartComponentsRequest_pb2.SmartComponentsRequest",  # REQ_SMART_COMPONENTS
    84: "NewsArticleRequest_pb2.NewsArticleRequest",  # REQ_NEWS_ARTICLE
    85: "NewsProvidersRequest_pb2.NewsProvidersRequest",  # REQ_NEWS_PROVIDERS
    86: "HistoricalNewsRequest_pb2.HistoricalNewsRequest",  # REQ_HISTORICAL_NEWS
    87: "HeadTimestampRequest_pb2.HeadTimestampRequest",  # REQ_HEAD_TIMESTAMP
    88: "HistogramDataRequest_pb2.HistogramDataRequest",  # REQ_HISTOGRAM_DATA
    89: "CancelHistogramData_pb2.CancelHistogramData",  # CANCEL_HISTOGRAM_DATA
    90: "CancelHeadTimestamp_pb2.CancelHeadTimestamp",  # CANCEL_HEAD_TIMESTAMP
    91: "MarketRuleRequest_pb2.MarketRuleRequest",  # REQ_MARKET_RULE
    92: "PnLRequest_pb2.PnLRequest",  # REQ_PNL
    93: "CancelPnL_pb2.CancelPnL",  # CANCEL_PNL
    94: "PnLSingleRequest_pb2.PnLSingleRequest",  # REQ_PNL_SINGLE
    95: "CancelPnLSingle_pb2.CancelPnLSingle",  # CANCEL_PNL_SINGLE
    96: "HistoricalTicksRequest_pb2.HistoricalTicksRequest",  # REQ_HISTORICAL_TICKS
    97: "TickByTickRequest_pb2.TickByTickRequest",  # REQ_TICK_BY_TICK_DATA
    98: "CancelTickByTick_pb2.CancelTickByTick",  # CANCEL_TICK_BY_TICK_DATA
    99: "CompletedOrdersRequest_pb2.CompletedOrdersRequest",  # REQ_COMPLETED_ORDERS
    100: "WshMetaDataRequest_pb2.WshMetaDataRequest",  # REQ_WSH_META_DATA
    101: "CancelWshMetaData_pb2.CancelWshMetaData",  # CANCEL_WSH_META_DATA
    102: "WshEventDataRequest_pb2.WshEventDataRequest",  # REQ_WSH_EVENT_DATA
    103: "CancelWshEventData_pb2.CancelWshEventData",  # CANCEL_WSH_EVENT_DATA
    104: "UserInfoRequest_pb2.UserInfoRequest",  # REQ_USER_INFO
    105: "CurrentTimeInMillisRequest_pb2.CurrentTimeInMillisRequest",  # REQ_CURRENT_TIME_IN_MILLIS
    108: "ConfigRequest_pb2.ConfigRequest",  # REQ_CONFIG
    109: "UpdateConfigRequest_pb2.UpdateConfigRequest",  # UPDATE_CONFIG
}
