"""ddpayne.fit"""
