package api

// DashboardFiles are the dashboard's embedded files.
var DashboardFiles = dashboardFiles
