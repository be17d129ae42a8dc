"""ddpayne.plots"""
